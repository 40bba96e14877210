"""The GROOVE reference's grid world timed with `benchmarks.gridworld`'s protocol, for a side by
side comparison on one machine.

This script does not import lpgx: it runs the reference's own code (EmptyJackson/groove, the
``environments`` package) in the reference's environment, jax 0.4.13 and its pins::

    python3.11 -m venv ref && ref/bin/pip install jax==0.4.13 jaxlib==0.4.13 numpy==1.26.4 \\
        scipy==1.11.4 flax==0.6.11 optax==0.1.5 chex==0.1.82 gymnax==0.0.6 six \\
        ml_dtypes==0.2.0 orbax-checkpoint==0.2.3 protobuf==4.25.9 typing_extensions==4.12.2
    ref/bin/python -m benchmarks.reference_gridworld --groove PATH/TO/groove  # in lpgx's root

The timed function is `benchmarks.gridworld.make_timed`'s, written with the reference's calls:
sample one level per environment (`environments.environments.reset_env_params`, vmapped over
keys as the reference's level sampler does), reset every environment, then a `lax.scan` of
``steps`` vmapped steps (gymnax's `Environment.step`: the reference's automatic reset) with
uniformly random actions, splitting keys in the scan body; timed by
`benchmarks.common.time_compiled` (compiled apart, warmed up once, median of ``repeats``).
It returns the total reward and, as lpgx's does, the final observations, except with
``--total-only``: the reference's observation is a 3,201-float one-hot vector (lpgx's is one
integer), and without returning it XLA drops its computation; the reference figures quoted in
issue 18 were measured that way. Only the `all*` modes run through the reference's
`reset_env_params` here: `tabular` and `mazes` have no ``obj_ids`` entry there (KeyError), and
`rand_all` fails inside its sampler under jax 0.4.13.
"""

import argparse
import importlib
import os
import platform
import sys
from collections.abc import Callable
from typing import Any

from .common import time_compiled

ENV_NAME = "GridWorld-v0"


def make_timed(
    environments: Any, env_mode: str, num_envs: int, steps: int
) -> Callable[[Any], tuple[Any, Any]]:
    """``timed(key) -> (final observations, total reward)`` for the reference's grid world."""
    import jax
    import jax.numpy as jnp

    env_kwargs, _, _ = environments.get_env_spec(ENV_NAME, env_mode)
    env = environments.get_env(ENV_NAME, env_kwargs)
    sample = jax.vmap(lambda k: environments.reset_env_params(k, ENV_NAME, env_mode)[0])
    reset, step = jax.vmap(env.reset), jax.vmap(env.step)

    def timed(key: Any) -> tuple[Any, Any]:
        k_levels, k_reset, k_run = jax.random.split(key, 3)
        params = sample(jax.random.split(k_levels, num_envs))
        obs, state = reset(jax.random.split(k_reset, num_envs), params)

        def body(carry: Any, key: Any) -> tuple[Any, None]:
            state, obs, total = carry
            k_action, k_step = jax.random.split(key)
            actions = jax.random.randint(k_action, (num_envs,), 0, env.num_actions, jnp.int32)
            keys = jax.random.split(k_step, num_envs)
            obs, state, reward, _, _ = step(keys, state, actions, params)
            return (state, obs, total + jnp.sum(reward)), None

        init = (state, obs, jnp.zeros((), jnp.float32))
        (_, obs, total), _ = jax.lax.scan(body, init, jax.random.split(k_run, steps))
        return obs, total

    return timed


def main() -> None:
    """Time the reference's grid world for each ``--num-envs`` and print a table."""
    parser = argparse.ArgumentParser(description="The GROOVE reference's grid-world throughput.")
    parser.add_argument("--groove", required=True, help="a checkout of EmptyJackson/groove")
    parser.add_argument("--level-set", default="all_shortlife")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 4096])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--total-only", action="store_true", help="return the total reward only")
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.groove))
    import jax
    import jax.numpy as jnp

    environments = importlib.import_module("environments.environments")
    print(
        f"GROOVE reference, jax {jax.__version__}, {jax.default_backend()}, "
        f"{os.cpu_count()} CPUs, python {platform.python_version()}; level set {args.level_set}, "
        f"{args.steps} steps, median of {args.repeats}"
        + (", total reward only" if args.total_only else ", final observations returned")
    )
    print(f"{'envs':>6} {'compile s':>10} {'median ms':>10} {'env steps/s':>14}  total reward")
    for n in args.num_envs:
        timed = make_timed(environments, args.level_set, n, args.steps)
        if args.total_only:
            full = timed
            timed = lambda key, full=full, n=n: (jnp.zeros((n, 0)), full(key)[1])  # noqa: E731
        timing, (_, total) = time_compiled(
            timed, jax.random.PRNGKey(args.seed), repeats=args.repeats
        )
        median, compile_s = timing.median_s, timing.compile_s
        print(
            f"{n:>6} {compile_s:>10.2f} {1e3 * median:>10.2f} {n * args.steps / median:>14,.0f}"
            f"  {float(total):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
