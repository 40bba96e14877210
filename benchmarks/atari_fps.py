"""Frames per second of Atari in lpgx (the ``atari`` extra): the emulators alone (random
actions through ale-py's XLA interface, inside one compiled scan) and the online A2C and MGRL
loops (Nature CNN, 64 environments × 5 steps, K = 3), each timed after compilation.

    python -m benchmarks.atari_fps --game Breakout --windows 3

One agent step is 4 emulator frames (frame skip 4); both are reported.
"""

import argparse
import dataclasses
import json
import time

from .common import script_main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--windows", type=int, default=3, help="windows timed per loop")
    parser.add_argument("--random-steps", type=int, default=500)
    parser.add_argument("--presets", nargs="+", default=["a2c-online", "mgrl", "mgrl-lvc"])
    args = parser.parse_args(argv)

    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from lpgx.compose import PRESETS, build_online_trainer
    from lpgx.mgrl import AtariVec

    out: dict[str, object] = {"game": args.game, "envs": args.envs, "jax": jax.__version__}
    env = AtariVec(args.game, args.envs, seed=0)

    def body(state, k):
        action = jax.random.randint(k, (env.num_envs,), 0, env.num_actions, jnp.int32)
        state, step = env.step(state, k, action)
        return state, step.reward

    play = jax.jit(lambda s, k: jax.lax.scan(body, s, jax.random.split(k, args.random_steps)))
    state, _ = env.reset(jax.random.key(0))
    jax.block_until_ready(play(state, jax.random.key(1)))
    t0 = time.perf_counter()
    jax.block_until_ready(play(state, jax.random.key(2)))
    steps = args.envs * args.random_steps / (time.perf_counter() - t0)
    out["random_play"] = {"agent_steps_per_s": steps, "frames_per_s": 4 * steps}
    print("random play", out["random_play"], flush=True)

    for preset in args.presets:
        config = dataclasses.replace(
            PRESETS[preset][1],
            env_mode=f"atari:{args.game}",
            env_workers=args.envs,
            train_steps=10_000,
            chunk_size=1,
        )
        trainer = build_online_trainer(config)
        state = trainer.init()
        t0 = time.perf_counter()
        chunk = eqx.filter_jit(trainer.run_chunk).lower(state).compile()  # pyright: ignore[reportFunctionMemberAccess]
        compile_s = time.perf_counter() - t0
        state, _ = chunk(state)
        jax.block_until_ready(state)
        t0 = time.perf_counter()
        for _ in range(args.windows):
            state, _metrics = chunk(state)
        jax.block_until_ready(state)
        seconds = time.perf_counter() - t0
        steps = args.windows * trainer.env_steps_per_meta_step / seconds
        out[preset] = {
            "compile_s": compile_s,
            "s_per_window": seconds / args.windows,
            "agent_steps_per_s": steps,
            "frames_per_s": 4 * steps,
        }
        print(preset, out[preset], flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    script_main(main)
