"""The STS3215 control table: register name -> address, size and encoding (Feetech STS/SMS series manual).

Addresses below 40 live in EEPROM (kept across power cycles: id, baud, limits, homing offset); from 40 on
in SRAM (torque, goals, present values). Positions are 12-bit encoder ticks, 0..4095 for one turn.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_NUMBER_STS3215 = 777
RESOLUTION = 4096  # encoder ticks per turn
MAX_TICK = RESOLUTION - 1
DEFAULT_BAUDRATE = 1_000_000
# Baud_Rate register value -> bits per second.
BAUDRATES = {0: 1_000_000, 1: 500_000, 2: 250_000, 3: 128_000, 4: 115_200, 5: 57_600, 6: 38_400, 7: 19_200}


@dataclass(frozen=True)
class Register:
    address: int
    size: int
    # Bit holding the sign of a sign-magnitude value; None for unsigned registers.
    sign_bit: int | None = None
    read_only: bool = False


STS3215 = {
    # EEPROM
    "Firmware_Major_Version": Register(0, 1, read_only=True),
    "Firmware_Minor_Version": Register(1, 1, read_only=True),
    "Model_Number": Register(3, 2, read_only=True),
    "ID": Register(5, 1),
    "Baud_Rate": Register(6, 1),
    "Return_Delay_Time": Register(7, 1),  # units of 2 us
    "Response_Status_Level": Register(8, 1),
    "Min_Position_Limit": Register(9, 2),
    "Max_Position_Limit": Register(11, 2),
    "Max_Temperature_Limit": Register(13, 1),
    "Max_Voltage_Limit": Register(14, 1),
    "Min_Voltage_Limit": Register(15, 1),
    "Max_Torque_Limit": Register(16, 2),
    "Phase": Register(18, 1),
    "Unloading_Condition": Register(19, 1),
    "LED_Alarm_Condition": Register(20, 1),
    "P_Coefficient": Register(21, 1),
    "D_Coefficient": Register(22, 1),
    "I_Coefficient": Register(23, 1),
    "Minimum_Startup_Force": Register(24, 2),
    "CW_Dead_Zone": Register(26, 1),
    "CCW_Dead_Zone": Register(27, 1),
    "Protection_Current": Register(28, 2),
    "Angular_Resolution": Register(30, 1),
    "Homing_Offset": Register(31, 2, sign_bit=11),
    "Operating_Mode": Register(33, 1),  # 0 = position servo
    "Protective_Torque": Register(34, 1),
    "Protection_Time": Register(35, 1),
    "Overload_Torque": Register(36, 1),
    # SRAM
    "Torque_Enable": Register(40, 1),
    "Acceleration": Register(41, 1),
    "Goal_Position": Register(42, 2, sign_bit=15),
    "Goal_Time": Register(44, 2),
    "Goal_Velocity": Register(46, 2, sign_bit=15),
    "Torque_Limit": Register(48, 2),
    "Lock": Register(55, 1),
    "Present_Position": Register(56, 2, sign_bit=15, read_only=True),
    "Present_Velocity": Register(58, 2, sign_bit=15, read_only=True),
    "Present_Load": Register(60, 2, sign_bit=10, read_only=True),
    "Present_Voltage": Register(62, 1, read_only=True),  # 0.1 V
    "Present_Temperature": Register(63, 1, read_only=True),  # deg C
    "Status": Register(65, 1, read_only=True),
    "Moving": Register(66, 1, read_only=True),
    "Present_Current": Register(69, 2, read_only=True),
    "Maximum_Acceleration": Register(85, 1),
}


def register(name: str) -> Register:
    """The register called `name`; a typo names the known registers."""
    try:
        return STS3215[name]
    except KeyError:
        raise ValueError(f"unknown STS3215 register {name!r}; known: {sorted(STS3215)}") from None
