"""Where a trained SO-101 policy closes its gripper relative to the cube: the grasp error, in mm; JSON.

    python benchmarks/so101_grasp_error.py --checkpoint RUN/checkpoints/last/pretrained_model \\
        --episodes 20 --seed 1000 --image-size 128 --out docs/measurements/so101_suite/grasp_error.json

Success rate says that a pick failed, not by how much. This plays pick-place episodes with the policy (as
`smolvla eval` does: its action queue, re-planning every `--n-action-steps`) and, at the first step where the
gripper command falls below `CLOSE_BELOW` (the jaws start to close), records the horizontal offset of the
grasp point (forward kinematics of the measured joints, between the jaws) from the cube's centre and its
height above the cube's centre. The jaws open about 5 cm and the cube is 3 cm wide, so a grasp succeeds only
within about a centimetre across the jaws: a policy with a median error of 25 mm localises the cube but not
precisely enough to grasp it. Episodes where the gripper never closes are counted as such.

Whether the policy reads the cube's position from the cameras at all: at each episode's first step (the arm
at its start pose, so the cameras are the only source of where the cube is) the shoulder_pan of the last
action of a chunk predicted from fixed noise is regressed on the cube's azimuth. A policy that ignores the
images answers the same pan for every scene (slope 0); one that localises well has a small residual.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from smolvla.envs.registry import make_env
from smolvla.envs.so101_suite.ik import TopDownIK
from smolvla.eval.agents import PolicyAgent, obs_to_batch
from smolvla.eval.camera_size import eval_camera_size
from smolvla.policy.policy import SmolVLAPolicy

CLOSE_BELOW = 20.0  # gripper command (0-100): the jaws are closing (the expert opens at 50, closes at 0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="policy directory (save_pretrained)")
    p.add_argument("--plot", type=Path, nargs="+", help="instead of running: plot these reports' grasp offsets")
    p.add_argument("--png", type=Path, default=Path("grasp_error.png"), help="figure written with --plot")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=1000, help="seed of the first episode (held out: datagen uses 0..)")
    p.add_argument("--split", choices=("id", "ood"), default="id")
    p.add_argument("--n-action-steps", type=int, default=10)
    p.add_argument("--image-size", type=int, default=None, help="camera size (default: the training frames')")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="JSON report path (default: print only)")
    args = p.parse_args(argv)
    if (args.checkpoint is None) == (args.plot is None):
        p.error("give either --checkpoint (measure) or --plot REPORT.json ... (draw)")
    return args


def grasp_episode(env, agent, ik: TopDownIK, seed: int) -> dict:
    """One pick-place episode with `agent` (reset(), act(obs)): the grasp point's offset from the cube when the
    jaws first close, and for a PolicyAgent the pan of its first chunk."""
    obs = env.reset(seed=seed)
    agent.reset()
    cube = env.cube_pos(0)
    policy = getattr(agent, "policy", None)  # a scripted agent (tests) has no chunk to look at
    first_pan = None if policy is None else round(first_chunk_pan(policy, obs), 2)
    grasp = None
    info: dict = {}
    for step in range(env.max_episode_steps):
        action = agent.act(obs)
        if grasp is None and action[5] < CLOSE_BELOW:
            point, _ = ik.forward(np.radians(env.joint_positions()[:5]))
            cube = env.cube_pos(0)
            offset = (point - cube) * 1000.0
            grasp = {
                "step": step,
                "xy_mm": [round(float(v), 1) for v in offset[:2]],
                "xy_error_mm": round(float(np.hypot(*offset[:2])), 1),
                "height_above_cube_mm": round(float(offset[2]), 1),
            }
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    success, stages = bool(info.get("success")), info.get("stage_scores")
    azimuth = float(np.degrees(np.arctan2(cube[1], cube[0])))
    out = {"seed": seed, "grasp": grasp, "success": success, "stage_scores": stages}
    return out | {"cube_azimuth_deg": round(azimuth, 2), "first_chunk_pan_deg": first_pan}


def first_chunk_pan(policy: SmolVLAPolicy, obs: dict) -> float:
    """shoulder_pan (deg) of the last action of the chunk predicted from `obs` with noise seeded 0."""
    cfg = policy.config
    noise = torch.randn((1, cfg.chunk_size, cfg.model.max_action_dim), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return float(policy.predict_action_chunk(obs_to_batch(obs, cfg.camera_keys), noise=noise)[0, -1, 0])


def plot_offsets(reports: list[Path], png: Path) -> None:
    """One panel per report: where the jaws closed relative to the cube (mm), with the ~10 mm grasp window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(3.6 * len(reports), 3.8), squeeze=False)
    for ax, path in zip(axes[0], reports, strict=True):
        rep = json.loads(path.read_text())
        xy = np.array([e["grasp"]["xy_mm"] for e in rep["per_episode"] if e["grasp"] is not None]).reshape(-1, 2)
        ok = [e["success"] for e in rep["per_episode"] if e["grasp"] is not None]
        ax.scatter(xy[:, 0], xy[:, 1], c=["tab:green" if s else "tab:red" for s in ok], s=18)
        ax.add_patch(plt.Circle((0, 0), 10.0, fill=False, color="k", lw=1))
        ax.set(xlim=(-150, 150), ylim=(-150, 150), aspect="equal", xlabel="x - cube (mm)", ylabel="y - cube (mm)")
        ax.set_title(f"{path.stem}\nmedian {rep['xy_error_mm_median']} mm", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.plot is not None:
        plot_offsets(args.plot, args.png)
        print(json.dumps({"png": str(args.png), "reports": [str(p) for p in args.plot]}))
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    policy = SmolVLAPolicy.from_pretrained(args.checkpoint)
    policy.set_n_action_steps(args.n_action_steps)
    size = eval_camera_size(args.image_size, Path(args.checkpoint))
    env = make_env("so101/pick-place", image_size=size.size, split=args.split)
    ik = TopDownIK(env.model)
    agent = PolicyAgent(policy)
    episodes = [grasp_episode(env, agent, ik, args.seed + i) for i in range(args.episodes)]
    env.close()
    errors = np.array([e["grasp"]["xy_error_mm"] for e in episodes if e["grasp"] is not None])
    azimuth = np.array([e["cube_azimuth_deg"] for e in episodes])
    pan = np.array([e["first_chunk_pan_deg"] for e in episodes])
    slope, intercept = np.polyfit(azimuth, pan, 1) if len(episodes) > 2 else (float("nan"), float("nan"))
    report = {
        "benchmark": "so101_grasp_error",
        "checkpoint": str(args.checkpoint),
        "split": args.split,
        "seeds": [args.seed, args.seed + args.episodes - 1],
        "n_action_steps": args.n_action_steps,
        "image_size": size.size,
        "episodes": len(episodes),
        "closed": int(errors.size),
        "xy_error_mm_median": round(float(np.median(errors)), 1) if errors.size else None,
        "within_10mm": int((errors <= 10.0).sum()),
        "success": sum(e["success"] for e in episodes),
        "first_chunk_pan_vs_azimuth": {
            "slope": round(float(slope), 3),
            "residual_std_deg": round(float(np.std(pan - (slope * azimuth + intercept))), 2),
            "azimuth_std_deg": round(float(azimuth.std()), 2),
        },
        "machine": platform.processor() or platform.machine(),
        "per_episode": episodes,
    }
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
