"""Sharded GP (4 fake CPU devices, in a subprocess) equals single-device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import numpy as np, jax, jax.numpy as jnp
    from jax.sharding import Mesh
    from vipcore._src.predict import gp

    assert len(jax.devices()) == 4, jax.devices()
    q, d = 1024, 16
    mesh = Mesh(np.array(jax.devices()), ("prompts",))

    def run(dtype, tol, noise, block):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(q, d)).astype(dtype)
        single = gp.init(x, bandwidth=3.0)
        sharded = gp.shard(single, mesh)
        assert len(sharded.embeddings.sharding.device_set) == 4
        a, b = single, sharded
        for t in range(3):
            idx = rng.choice(q, 100, replace=t == 2)
            p = rng.integers(0, 9, 100) / 8
            w = np.full(100, 8.0)
            a = gp.update(a, idx, p, weights=w, noise=noise, block_size=block)
            b = gp.update(b, idx, p, weights=w, noise=noise, block_size=block)
        assert b.mean.dtype == dtype
        assert len(b.mean.sharding.device_set) == 4, b.mean.sharding
        np.testing.assert_allclose(np.asarray(b.mean), np.asarray(a.mean),
                                   rtol=0, atol=tol)
        i = np.arange(0, q, 7)
        np.testing.assert_allclose(np.asarray(gp.predict(b, i)),
                                   np.asarray(gp.predict(a, i)), rtol=0, atol=tol)

    # Only the summation order differs between the layouts. Rounding errors
    # are amplified by at most cond(K_BB + delta I) <= (B + delta) / delta
    # (~3e5 for float32's default delta); on latent values of size ~5 over
    # 3 steps the float64 bound is ~1e-9 and the float32 one ~1e-3.
    with jax.enable_x64(True):
        run(np.float64, 1e-9, "none", None)
    run(np.float32, 1e-3, "binomial", 128)
    try:
        gp.shard(gp.init(np.ones((1023, 2)), bandwidth=3.0), mesh)
    except ValueError as err:
        assert "divisible" in str(err)
    else:
        raise AssertionError("no error for Q % devices != 0")
    print("SHARDED_OK")
    """
)


def test_sharded_equals_single_device():
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SHARDED_OK" in out.stdout
