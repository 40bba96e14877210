"""The built-in level sets, read from ``lpgx/envs/data/level_sets.json``, are exactly the sets
lpgx defined in Python before the data moved to JSON."""

import hashlib

from lpgx.envs import LEVEL_SET_NAMES, get_level_set
from lpgx.envs._levels import LogUniform, RandomWalls, UniformChoice

# sha256 of ``repr(get_level_set(name))`` for every built-in set, captured from the Python
# definitions the JSON replaced. The repr holds every field of every family with its type
# (``1`` and ``1.0``, tuples and lists print differently), so equal digests mean equal sets,
# equal hashes as `jit` static arguments and bitwise-equal samples. The order is that of
# `lpgx levels list`.
REPR_SHA256 = {
    "dense": "5632e9b076e038ff26f14c5d1c6fa481d455ae93849737a840467c55e77b97b3",
    "sparse": "be80388ecc90276c02d8d08be74fcacb161590b6f33bc6806b8fbc5ebab721f3",
    "long": "152117873ec2a6898480fe546d0990c8da4c1decdae2d64cf341b84b339d7574",
    "longer": "07040eedc7b5eef9b5a0d0e6c48f50b8c9a29551ed974daba55a9cf89025b948",
    "long_dense": "a1206ad25e21c3e77f31fcfd84cdb96e69a244f8ed4ed1bb397d07775eaeee10",
    "tabular": "71bb2c516af46b363e98742ed128267c8666f32566e1e6382855542bc9d6e9b0",
    "rand_dense": "da9350543fd23efad879072e8f7ac3a84072f4af8b8b55aa540a6e0e71152af1",
    "rand_long": "b9607abc84be42b3bb7f4c623fc82dd910978c8e738098112dfde842ef68e565",
    "rand_small": "8e7a8e6193ecc142a692290d8972678c56c43c8f04c8b41ddf310fd022b7a674",
    "rand_sparse": "ebae451cf41a8bd0b7a8557a987c3476dab99af385eb2e369ced565d385fca00",
    "rand_very_dense": "f57ac582e52de0e879df53e85255dbbb6ebbbdc01ee5f9933f7cbdf1f5616c4b",
    "rand_tiny": "13193e818723383dafeac05028f14e0b687dd7aa077ec925ee33edaef789138d",
    "sixteen_rooms": "ac3601f50ab6ddd8b7bfce5b55a02c968b932e36bebb83a80574fea79957f318",
    "sixteen_rooms_2": "72483d80cda0ea7c61939aca61bc371a97792c3ebdaeb3ada79edf0444342d60",
    "labyrinth": "ecc59b5243f74997201af8abd358d904f1fad8751786dc574d2b07ad81c5dcb7",
    "labyrinth_flipped": "48ced276d2f0fb0e885f63528a6f2a35f745d0c806be518fa66f3bd511d2c7f8",
    "labyrinth_2": "d86cf5c748150060e5afd960843604424e6f4fca9a0ff0cf653416bfd688f404",
    "standard_maze": "de45b745e0fcc82ecdc3d546cae30cb04e8468f52bed50efe94e30dd4322b56e",
    "standard_maze_2": "291b5f14c2431edb715ef2d4ace1ba1ed033b05333a813bad1ac0cb1c88d13ac",
    "standard_maze_3": "2544c721b8004079795645f8bed40cc0a6bee79bb8380bbe6f8185084af7c664",
    "small_corridor": "89546f7c5e5904704958361969571fc110561917d00a00ff38453157839e20a3",
    "mazes": "9b6afdb381eaddf685b8f81669ef189757747a393a1a0cc3747773ab9549d2b2",
    "all": "0de01eadf25314385cc0ce69b379be66fcf483e5d2fd80133ef8c782b4185af3",
    "all_shortlife": "efa7b078ade012bf70ee4f583f58150fe2559a6cde9627062e073eb04aee6200",
    "all_randlife": "0da26092398983d22882e4a166c9e27de52fc211a88d35252fde93c6d00d856b",
    "all_vrandlife": "a510255fb2f381a9d892f8fd684c8c5b8b0f158e16c50b2fc866685724b96034",
    "rand_all": "c0db770d4657c66670e31782fd67f459cd03584b2a2d5528d82486bc465f8281",
    "small": "48c26083b26667bd6fe87924683fa050496dd65df12bec5fae55b5c2614a2912",
    "medium": "be5fe2acac9b3ba3dbffe967467636b879d094406b58e93cd1436ffa41370e56",
    "large": "843214823408825b5e5a6bf68330be97c9d9b042bc04463054aa6261ba8b2bbf",
}


def test_every_built_in_set_equals_its_former_python_definition() -> None:
    assert tuple(REPR_SHA256) == LEVEL_SET_NAMES
    for name, digest in REPR_SHA256.items():
        text = repr(get_level_set(name))
        assert hashlib.sha256(text.encode()).hexdigest() == digest, name


def test_fixed_walls_and_samplers_decode_to_their_python_types() -> None:
    (longer,) = get_level_set("longer").families
    # Column 4 of the 9×9 grid is walled except rows 1 and 7; 7 objects as in the LPG paper.
    assert longer.walls == tuple(r * 9 + 4 for r in range(9) if r not in (1, 7))
    assert longer.obj_types == (0, 0, 1, 1, 1, 1, 1) and longer.n_objs == 7
    assert longer.rewards == (1.0, -1.0) and isinstance(longer.rewards[0], float)
    (all_randlife,) = get_level_set("all_randlife").families
    assert all_randlife.grid_size == UniformChoice(4, 10)
    assert all_randlife.walls == RandomWalls(15, 100)
    assert all_randlife.lifetime == LogUniform(50.0, 250.0, integer=True)
    assert all_randlife.obj_types is None and all_randlife.num_types == 5


def test_mixtures_hold_their_members_families_in_order() -> None:
    members = ("dense", "sparse", "long", "longer", "long_dense")
    expected = tuple(get_level_set(m).families[0] for m in members)
    assert get_level_set("tabular").families == expected
    assert [f.name for f in get_level_set("mazes").families][:2] == [
        "sixteen_rooms",
        "sixteen_rooms_2",
    ]
