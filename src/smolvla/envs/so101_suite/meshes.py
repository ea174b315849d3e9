"""Low-poly copies of the arm's meshes (its STL files hold 320k triangles: software rendering draws them at
~20 fps even into 32 px frames, and compiling their convex hulls takes seconds per env).

Vertex clustering: snap the vertices to a 4 mm grid, merge those sharing a cell, drop the triangles that
collapse. The copies keep the arm's silhouette; collision, which MuJoCo computes on a mesh's convex hull,
moves by at most a few millimetres, and the fingertip pads that hold cubes are boxes, not meshes.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

# Grid cell (m): 4 mm keeps the arm's silhouette and holes at the camera distances used here.
CELL = 0.004
_RECORD = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])


def read_stl(path: Path) -> np.ndarray:
    """Binary STL -> triangle corners float32[F, 3, 3]."""
    raw = path.read_bytes()
    count = int(np.frombuffer(raw, np.uint32, 1, 80)[0])
    if len(raw) != 84 + count * _RECORD.itemsize:
        raise ValueError(f"{path}: not a binary STL ({len(raw)} bytes for {count} triangles)")
    return np.frombuffer(raw, _RECORD, count, 84)["v"]


def decimate(triangles: np.ndarray, cell: float = CELL) -> tuple[np.ndarray, np.ndarray]:
    """Triangle corners float[F, 3, 3] -> (vertices float32[V, 3], triangles int64[F', 3]): corners merged
    per grid cell (at their mean), no degenerate or repeated triangles left."""
    corners = triangles.reshape(-1, 3).astype(np.float64)
    grid = np.floor(corners / cell).astype(np.int64)
    grid -= grid.min(axis=0)
    span = grid.max(axis=0) + 1
    key = (grid[:, 0] * span[1] + grid[:, 1]) * span[2] + grid[:, 2]  # one int per cell: a fast 1-d unique
    _, cluster, counts = np.unique(key, return_inverse=True, return_counts=True)
    merged = np.zeros((len(counts), 3))
    np.add.at(merged, cluster, corners)
    merged /= counts[:, None]
    tri = cluster.reshape(-1, 3)
    tri = tri[(tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])]
    _, first = np.unique(np.sort(tri, axis=1), axis=0, return_index=True)
    return merged.astype(np.float32), tri[np.sort(first)]


@functools.cache
def low_poly(path: Path) -> tuple[list[float], list[int]]:
    """The decimated mesh of one STL file as flat vertex and face lists (cached: every env reuses them)."""
    verts, faces = decimate(read_stl(path))
    return verts.ravel().tolist(), faces.ravel().tolist()


def use_low_poly_meshes(spec, mesh_dir: Path) -> None:
    """Replace every file mesh of `spec` by its decimated copy, under the same name (a file mesh without
    one is named after its file, which is what the geoms refer to)."""
    for mesh in spec.meshes:
        verts, faces = low_poly(mesh_dir / mesh.file)
        mesh.name = mesh.name or Path(mesh.file).stem
        mesh.file = ""
        mesh.uservert = verts
        mesh.userface = faces
