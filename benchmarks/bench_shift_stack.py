"""Shift-and-stack on the CPU: trajectories tested per second, and how the cost grows with epochs and grid size.

Run from the repository root::

    python benchmarks/bench_shift_stack.py [--size 1000] [--repeat 2]

A trajectory is one starting pixel x one velocity; every velocity of the grid is tested at every
starting pixel of the image. The images are unit-variance psi/phi planes of the given size (the cost
does not depend on their content, only the few seeds refined afterwards do). Three tables:

1. astrokit's `shift_and_stack` against the same search written with ``np.roll`` (what one writes
   first in a notebook: a shifted copy of each image per velocity, the same leave-brightest-epoch-out
   statistic and argmax), side by side, with the ratio (roll time / astrokit time; the astrokit time
   includes the refinement of the seeds);
2. the cost against the number of epochs (fixed grid);
3. the cost against the size of the velocity grid (fixed epochs), from `velocity_grid` with a finer and
   finer tolerance.
"""

import argparse
import os
import platform
import time

import numpy as np

from astrokit.linking import likelihood_images, shift_and_stack, velocity_grid


def _planes(rng, n_epochs, size):
    psi, phi = zip(*(likelihood_images(rng.normal(0, 1, (size, size)).astype(np.float32), 1.0)
                     for _ in range(n_epochs)), strict=True)
    return np.array(psi), np.array(phi)


def _grid(n_velocities, duration, scale=1.24):
    """Make a velocity grid of about n_velocities (5-100 arcsec/h) by choosing the tolerance."""
    lo, hi = 0.2, 20.0
    for _ in range(40):
        tol = np.sqrt(lo * hi)
        g = velocity_grid(min_rate=5.0, max_rate=100.0, duration=duration, pixel_scale=scale, tolerance=tol)
        if len(g) > n_velocities:
            lo = tol
        else:
            hi = tol
    rate, pa = np.asarray(g["rate"]), np.radians(np.asarray(g["position_angle"]))
    return rate * np.sin(pa) / scale, rate * np.cos(pa) / scale


def _roll_stack(psi, phi, times, vx, vy):
    """Run the same search with np.roll: shifted copies per velocity, the same statistic and argmax."""
    n_ep = len(times)
    best = np.full(psi.shape[1:], -np.inf, dtype=np.float32)
    best_k = np.zeros(psi.shape[1:], dtype=np.int32)
    for k in range(len(vx)):
        total = np.zeros(psi.shape[1:], dtype=np.float32)
        weight = np.zeros(psi.shape[1:], dtype=np.float32)
        top = np.full(psi.shape[1:], -np.inf, dtype=np.float32)
        for e, t in enumerate(times):
            shift = (-int(round(vy[k] * t)), -int(round(vx[k] * t)))
            shifted = np.roll(psi[e], shift, axis=(0, 1))
            total += shifted
            weight += np.roll(phi[e], shift, axis=(0, 1))
            top = np.maximum(top, shifted)
        loo = (total - top) / np.sqrt(np.maximum(weight * (n_ep - 1) / n_ep, 1e-30))
        better = loo > best
        best_k[better] = k
        best = np.maximum(best, loo)
    return best, best_k


def _time(func, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="image side (px) for table 1 (default 1000)")
    parser.add_argument("--small", type=int, default=500, help="image side (px) for tables 2 and 3 (default 500)")
    parser.add_argument("--repeat", type=int, default=2, help="repetitions, median kept (default 2)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"# shift-and-stack benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}, numpy {np.__version__}")

    def row(label, psi, phi, times, vx, vy, naive=False):
        n_traj = psi.shape[1] * psi.shape[2] * len(vx)
        t_ours = _time(lambda: shift_and_stack(psi, phi, times, vx, vy, threshold=9.0), args.repeat)
        line = f"{label:>24s} {len(times):6d} {len(vx):6d} {n_traj:12.3e} {t_ours:8.2f} {n_traj / t_ours:12.3e}"
        if naive:
            t_naive = _time(lambda: _roll_stack(psi, phi, times, vx, vy), 1)
            line += f" {t_naive:8.2f} {n_traj / t_naive:12.3e} {t_naive / t_ours:6.1f}"
        print(line)
        return t_ours

    head = f"{'case':>24s} {'epochs':>6s} {'vel.':>6s} {'traject.':>12s} {'time s':>8s} {'traj/s':>12s}"
    print(f"\n## 1. astrokit vs np.roll stacking, {args.size} x {args.size} px, 8 epochs over 2 h")
    print(head + f" {'roll s':>8s} {'roll/s':>12s} {'ratio':>6s}")
    psi, phi = _planes(rng, 8, args.size)
    times = np.linspace(-1.0, 1.0, 8)
    vx, vy = _grid(100, 2.0)
    row("full frame", psi, phi, times, vx, vy, naive=True)

    print(f"\n## 2. cost vs number of epochs ({args.small} x {args.small} px, ~200 velocities)")
    print(head + f" {'per epoch':>10s}")
    base = None
    for n_ep in (4, 8, 16, 32):
        psi, phi = _planes(rng, n_ep, args.small)
        times = np.linspace(-1.0, 1.0, n_ep)
        vx, vy = _grid(200, 2.0)
        t = row(f"{n_ep} epochs", psi, phi, times, vx, vy)
        base = base or t / n_ep
        print(f"{'':>24s} time / epoch relative to 4 epochs: {t / n_ep / base:.2f}")

    print(f"\n## 3. cost vs size of the velocity grid ({args.small} x {args.small} px, 8 epochs over 2 h)")
    print(head)
    psi, phi = _planes(rng, 8, args.small)
    times = np.linspace(-1.0, 1.0, 8)
    base = None
    for n_vel in (50, 200, 800, 3200):
        vx, vy = _grid(n_vel, 2.0)
        t = row(f"~{n_vel} velocities", psi, phi, times, vx, vy)
        base = base or t / len(vx)
        print(f"{'':>24s} time / velocity relative to the smallest grid: {t / len(vx) / base:.2f}")


if __name__ == "__main__":
    main()
