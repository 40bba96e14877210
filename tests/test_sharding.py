"""The agent axis is sharded over devices, with the same results as on one device.

Runs in a subprocess: the number of (forced host) devices is fixed when JAX starts.
"""

import textwrap

import pytest

from ._host_devices import run_on_host_devices

SCRIPT = textwrap.dedent(
    """
    import jax.numpy as jnp, equinox as eqx, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec
    from lpgx.sharding import agent_mesh, check_divisible, replicate, shard_agents

    assert len(jax.devices()) == 8, jax.devices()
    levels = lpgx.get_level_set("all_shortlife")
    learner = lpgx.Learner.for_tasks(levels, num_workers=2, rollout_len=4)
    config = lpgx.MetaGradientConfig(num_agent_updates=2)
    meta = lpgx.MetaGradient(learner, config, num_mini_batches=2)
    rule = lpgx.LPG(key=jax.random.key(0), hidden=8, y_size=4)
    n = 16
    tasks = jax.vmap(levels.sample)(jax.random.split(jax.random.key(1), n))
    agents = meta.init_agents(jax.random.key(2), tasks, rule)
    state = meta.init(rule, jax.random.key(3))

    def compile_(f, *args):
        # The compiled call and the flops one device runs (of the SPMD-partitioned program).
        compiled = eqx.filter_jit(f).lower(*args).compile()
        cost = compiled.compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return compiled, cost["flops"]

    one = jax.devices()[0]
    def on_one(tree):
        put = lambda x: jax.device_put(x, one) if isinstance(x, jax.Array) else x
        return jax.tree.map(put, tree)
    step1, flops1 = compile_(meta.step, on_one(state), on_one(agents), jax.random.key(4))
    s1, a1, m1 = step1(on_one(state), on_one(agents), jax.random.key(4))

    mesh = agent_mesh(8)
    check_divisible(n, 2, mesh)
    sa = shard_agents(agents, mesh)
    assert sa.agent.params.policy.table.sharding.spec == PartitionSpec("agents")
    # The rule is replicated even where a weight's first axis equals the number of agents.
    rs = replicate(state, mesh)
    phi_bias = rs.rule.phi.layers[0].bias
    assert phi_bias.shape[0] == n and phi_bias.sharding.spec == PartitionSpec(), phi_bias.sharding
    step8, flops8 = compile_(meta.step, rs, sa, jax.random.key(4))
    s8, a8, m8 = step8(rs, sa, jax.random.key(4))
    # The work is partitioned, not replicated: each device runs ~1/8 of the flops (measured
    # 0.13; only the rule's update is repeated on every device).
    assert flops8 < flops1 / 4, (flops1, flops8)

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

    # An ES generation: 8 antithetic pairs = 16 candidates, 2 per device, in 2 (strided)
    # mini-batches, each spanning every device.
    es = lpgx.EvolutionStrategy(
        learner, lpgx.ESConfig(num_eval_episodes=4), num_updates=3, eval_steps=20,
        num_mini_batches=2,
    )
    pairs = 8
    es_state = es.init(rule, jax.random.key(5))
    es_agents = es.init_agents(jax.random.key(6), jax.tree.map(lambda x: x[:pairs], tasks), rule)
    args1 = (on_one(es_state), on_one(es_agents), jax.random.key(7))
    args8 = (replicate(es_state, mesh), shard_agents(es_agents, mesh), jax.random.key(7))
    gen1, es_flops1 = compile_(es.generation, *args1)
    gen8, es_flops8 = compile_(es.generation, *args8)
    e1, e8 = gen1(*args1), gen8(*args8)
    # Measured 0.17: ask and tell (noise for every candidate, the ES update) are replicated.
    assert es_flops8 < es_flops1 / 3, (es_flops1, es_flops8)
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
    print(f"per-device flops ratio: meta {flops8 / flops1:.3f}, es {es_flops8 / es_flops1:.3f}")
    print("SHARDING-OK")
    """
)


@pytest.mark.slow
def test_meta_gradient_step_and_es_generation_sharded_over_8_host_devices() -> None:
    assert "SHARDING-OK" in run_on_host_devices(SCRIPT, 8)
