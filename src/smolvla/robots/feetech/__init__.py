"""Feetech STS/SCS serial protocol, the STS3215 control table and a motors bus over pyserial."""
