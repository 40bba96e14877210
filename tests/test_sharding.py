"""The agent axis is sharded over devices, with the same results as on one device.

Runs in a subprocess: the number of (forced host) devices is fixed when JAX starts.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, equinox as eqx, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec
    jax.config.update("jax_numpy_rank_promotion", "raise")
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    from jaxtyping import install_import_hook
    with install_import_hook("lpgx", "beartype.beartype"):
        import lpgx
        from lpgx.sharding import agent_mesh, check_divisible, shard_agents

    assert len(jax.devices()) == 8, jax.devices()
    levels = lpgx.get_level_set("all_shortlife")
    learner = lpgx.Learner.for_level_set(levels, num_workers=2, rollout_len=4)
    config = lpgx.MetaGradientConfig(num_agent_updates=2)
    meta = lpgx.MetaGradient(learner, config, num_mini_batches=2)
    rule = lpgx.LPG(key=jax.random.key(0), hidden=8, y_size=4)
    n = 16
    tasks = jax.vmap(levels.sample)(jax.random.split(jax.random.key(1), n))
    agents = meta.init_agents(jax.random.key(2), tasks, rule)
    state = meta.init(rule, jax.random.key(3))
    step = eqx.filter_jit(meta.step)

    one = jax.devices()[0]
    def on_one(tree):
        put = lambda x: jax.device_put(x, one) if isinstance(x, jax.Array) else x
        return jax.tree.map(put, tree)
    s1, a1, m1 = step(on_one(state), on_one(agents), jax.random.key(4))

    mesh = agent_mesh(8)
    check_divisible(n, 2, mesh)
    sa = shard_agents(agents, n, mesh)
    assert sa.agent.params.policy.table.sharding.spec == PartitionSpec("agents")
    s8, a8, m8 = step(shard_agents(state, n, mesh), sa, jax.random.key(4))

    # The agent axis stays split: each device holds 2 of the 16 agents.
    table = a8.agent.params.policy.table
    assert len(table.addressable_shards) == 8
    assert {s.data.shape[0] for s in table.addressable_shards} == {2}, table.sharding
    for x, y in zip(jax.tree.leaves(eqx.filter(s1.rule, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(s8.rule, eqx.is_inexact_array))):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=1e-7)
    a1_table = np.asarray(a1.agent.params.policy.table)
    np.testing.assert_allclose(a1_table, np.asarray(table), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(float(m1["outer_loss"]), float(m8["outer_loss"]), rtol=1e-5)

    # An ES generation: 8 antithetic pairs = 16 candidates, 2 per device.
    es = lpgx.EvolutionStrategy(
        learner, lpgx.ESConfig(num_eval_episodes=4), num_updates=3, eval_steps=20
    )
    pairs = 8
    es_state = es.init(rule, jax.random.key(5))
    es_agents = es.init_agents(jax.random.key(6), jax.tree.map(lambda x: x[:pairs], tasks), rule)
    gen = eqx.filter_jit(es.generation)
    e1 = gen(on_one(es_state), on_one(es_agents), jax.random.key(7))
    e8 = gen(shard_agents(es_state, pairs, mesh), shard_agents(es_agents, pairs, mesh),
             jax.random.key(7))
    np.testing.assert_allclose(np.asarray(e1[3]), np.asarray(e8[3]), rtol=1e-4, atol=1e-5)
    assert len(e8[1].agent.params.policy.table.addressable_shards) == 8
    for x, y in zip(jax.tree.leaves(eqx.filter(e1[0].rule, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(e8[0].rule, eqx.is_inexact_array))):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)

    try:
        check_divisible(12, 2, mesh)
    except ValueError as e:
        assert "cannot be split over 8 devices" in str(e)
    else:
        raise AssertionError("indivisible agents were accepted")
    print("SHARDING-OK")
    """
)


@pytest.mark.slow
def test_meta_gradient_step_and_es_generation_sharded_over_8_host_devices() -> None:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SHARDING-OK" in proc.stdout
