"""ALFWorld games built offline from the floor plans, object tables and goals in the wheel.

The official games come from ALFRED's THOR scenes and cannot be downloaded here. What the
wheel does ship is enough to write a PDDL problem in the official format per game: each
floor plan's receptacles with their poses (``*-openable.json``), the object classes present
(``*-objects.json``), what may contain what and which objects can be heated/cooled/cleaned/
toggled (``constants``), and the PDDL goal of each task type (``goal_library``). Objects are
scattered at random over receptacles that can hold them, so placement differs from the
official distribution; the engine, text, rules and goals are ALFWorld's own.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

TASK_TYPES = {
    1: "pick_and_place_simple",
    2: "look_at_obj_in_light",
    3: "pick_clean_then_place_in_recep",
    4: "pick_heat_then_place_in_recep",
    5: "pick_cool_then_place_in_recep",
    6: "pick_two_obj_and_place",
}
# ALFRED's valid_unseen floor plans (one per room kind); never used for train/valid_seen.
UNSEEN_SCENES = (10, 219, 308, 424)
LAMP_CLASSES = ("DeskLamp", "FloorLamp")
LAMP_HOLDERS = {"SideTable", "Desk", "Dresser", "DiningTable", "CoffeeTable", "Shelf", "TVStand", "Ottoman", "Cart"}
# The appliance each state-change task needs, and the fact that marks eligible objects.
APPLIANCE = {
    "pick_clean_then_place_in_recep": ("SinkBasin", "Cleanable", "cleanable"),
    "pick_heat_then_place_in_recep": ("Microwave", "Heatable", "heatable"),
    "pick_cool_then_place_in_recep": ("Fridge", "Coolable", "coolable"),
}


def _constants():
    import alfworld.gen.constants as constants

    return constants


def scene_kind(scene: int) -> str:
    for kind, numbers in _constants().SCENE_TYPE.items():
        if scene in numbers:
            return kind
    raise ValueError(f"unknown floor plan number {scene}")


def all_scenes() -> list[int]:
    layouts = resources.files("alfworld.gen") / "layouts"
    names = [p.name for p in layouts.iterdir() if p.name.endswith("-openable.json")]
    return sorted(int(n[len("FloorPlan") : -len("-openable.json")]) for n in names)


@lru_cache(maxsize=None)
def _layout(scene: int) -> tuple[dict[str, list[float]], list[str]]:
    layouts = resources.files("alfworld.gen") / "layouts"
    receptacles = json.loads((layouts / f"FloorPlan{scene}-openable.json").read_text())
    objects = json.loads((layouts / f"FloorPlan{scene}-objects.json").read_text())
    return receptacles, objects


def mangle(name: str) -> str:
    """ALFRED's PDDL-safe ids (``Apple|+01.00|...`` → ``Apple_bar__plus_01_dot_00...``)."""
    for a, b in (("-", "_minus_"), ("|", "_bar_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_")):
        name = name.replace(a, b)
    return name


def receptacle_class(receptacle_id: str) -> str:
    parts = receptacle_id.split("|")
    return parts[-1] if parts[-1].isalpha() else parts[0]


def _location(pose: list[float]) -> str:
    x, z, rotation, horizon = pose
    return f"loc|{round(x / 0.25)}|{round(z / 0.25)}|{int(rotation) // 90 % 4}|{int(horizon)}"


@dataclass
class Scene:
    """One randomised arrangement of a floor plan: where every object instance lies."""

    number: int
    receptacles: dict[str, str]  # id -> class
    locations: dict[str, str]  # receptacle id -> location
    placed: dict[str, str] = field(default_factory=dict)  # object id -> receptacle id

    def classes(self) -> set[str]:
        return set(self.receptacles.values())

    def instances(self, cls: str) -> list[str]:
        return [o for o in self.placed if o.split("|")[0] == cls]


def arrange(number: int, rng: random.Random) -> Scene:
    """Scatter 1-3 instances of each movable object class over receptacles that can hold it."""
    c = _constants()
    poses, object_classes = _layout(number)
    receptacles = {
        rid: receptacle_class(rid)
        for rid in poses
        if receptacle_class(rid) in c.RECEPTACLES and receptacle_class(rid) not in c.MOVABLE_RECEPTACLES_SET
    }
    scene = Scene(number, receptacles, {rid: _location(poses[rid]) for rid in receptacles})
    holders: dict[str, list[str]] = {}
    for rid, rcls in sorted(receptacles.items()):
        for ocls in c.VAL_RECEPTACLE_OBJECTS.get(rcls, ()):
            holders.setdefault(ocls, []).append(rid)
    for ocls in sorted(set(object_classes)):
        if ocls in LAMP_CLASSES:
            spots = sorted(r for r, rc in receptacles.items() if rc in LAMP_HOLDERS)
            count = 1
        elif ocls in c.OBJECTS and "Sliced" not in ocls and ocls in holders:
            spots = holders[ocls]
            count = rng.randint(1, c.MAX_NUM_OF_OBJ_INSTANCES)
        else:
            continue
        for _ in range(count if spots else 0):
            coords = "|".join(f"{rng.uniform(-3, 3):+06.2f}" for _ in range(3))
            scene.placed[f"{ocls}|{coords}"] = rng.choice(spots)
    return scene


def task_candidates(scene: Scene, task_type: str) -> list[dict[str, Any]]:
    """Every (object, receptacle/lamp) pair this arrangement supports for ``task_type``.

    A pair is kept only if the goal is not already true at the start.
    """
    c = _constants()
    if task_type not in c.GOALS_VALID or scene_kind(scene.number) not in c.GOALS_VALID[task_type]:
        return []
    present = {o.split("|")[0] for o in scene.placed} - set(LAMP_CLASSES)
    out: list[dict[str, Any]] = []
    if task_type == "look_at_obj_in_light":
        for lamp in sorted({o.split("|")[0] for o in scene.placed} & set(LAMP_CLASSES)):
            for obj in sorted(present):
                out.append(_params(obj, "", lamp))
        return out
    need = 2 if task_type == "pick_two_obj_and_place" else 1
    appliance, flag, _ = APPLIANCE.get(task_type, (None, None, None))
    if appliance is not None and appliance not in scene.classes():
        return []
    for obj in sorted(present):
        if flag is not None and obj not in c.VAL_ACTION_OBJECTS[flag]:
            continue
        instances = scene.instances(obj)
        if len(instances) < need:
            continue
        for recep in sorted(scene.classes()):
            if recep == appliance or obj not in c.VAL_RECEPTACLE_OBJECTS.get(recep, ()):
                continue
            if any(scene.receptacles[scene.placed[o]] == recep for o in instances):
                continue  # already satisfied (or half-satisfied for two objects)
            out.append(_params(obj, recep, ""))
    return out


def _params(obj: str, parent: str, toggle: str) -> dict[str, Any]:
    return {
        "object_target": obj,
        "parent_target": parent,
        "toggle_target": toggle,
        "mrecep_target": "",
        "object_sliced": False,
    }


def game_folder(task_type: str, params: dict[str, Any], scene: int) -> str:
    """The official folder name: ``<task_type>-<Object>-<MRecep|None>-<Recep>-<scene>``."""
    parent = params["parent_target"] or params["toggle_target"] or "None"
    return f"{task_type}-{params['object_target']}-{params['mrecep_target'] or 'None'}-{parent}-{scene}"


def traj_data(task_type: str, params: dict[str, Any], scene: int, description: str) -> dict[str, Any]:
    """The fields of ALFRED's traj_data.json that ALFWorld reads."""
    return {
        "task_type": task_type,
        "pddl_params": params,
        "scene": {"floor_plan": f"FloorPlan{scene}", "scene_num": scene},
        "turk_annotations": {"anns": [{"task_desc": description, "high_descs": [], "votes": []}]},
        "pawkit_generated": True,
    }


def problem(scene: Scene, task_type: str, params: dict[str, Any], rng: random.Random) -> str:
    """The PDDL problem (``initial_state.pddl``) in the layout ALFRED's generator writes."""
    import alfworld.gen.goal_library as glib

    c = _constants()
    objects = sorted(scene.placed)
    receptacles = sorted(scene.receptacles)
    ocls = {o: o.split("|")[0] for o in objects}
    otypes = sorted(set(ocls.values()) | {params["object_target"]} | ({params["toggle_target"]} - {""}))
    rtypes = sorted(scene.classes())
    taken = set(scene.locations.values())
    while True:  # the agent starts somewhere in the middle of the room, not at a receptacle
        start = f"loc|{rng.randint(-8, 8)}|{rng.randint(-8, 8)}|{rng.randint(0, 3)}|30"
        if start not in taken:
            break
    locations = sorted(taken | {start})

    init = [f"(atLocation agent1 {start})"]
    init += [f"(receptacleType {r} {scene.receptacles[r]}Type)" for r in receptacles]
    init += [f"(receptacleAtLocation {r} {scene.locations[r]})" for r in receptacles]
    init += [f"(openable {r})" for r in receptacles if scene.receptacles[r] in c.OPENABLE_CLASS_SET]
    init += [f"(objectType {o} {ocls[o]}Type)" for o in objects]
    init += [f"(pickupable {o})" for o in objects if ocls[o] not in LAMP_CLASSES]
    init += [f"(isReceptacleObject {o})" for o in objects if ocls[o] in c.MOVABLE_RECEPTACLES_SET]
    init += [f"(inReceptacle {o} {scene.placed[o]})" for o in objects]
    init += [f"(objectAtLocation {o} {scene.locations[scene.placed[o]]})" for o in objects]
    for flag, fact in (("Cleanable", "cleanable"), ("Heatable", "heatable"), ("Coolable", "coolable"),
                       ("Sliceable", "sliceable"), ("Toggleable", "toggleable")):
        init += [f"({fact} {o})" for o in objects if ocls[o] in c.VAL_ACTION_OBJECTS[flag]]
    init += [
        f"(canContain {r}Type {o}Type)"
        for r in rtypes
        for o in otypes
        if o in c.VAL_RECEPTACLE_OBJECTS.get(r, ())
    ]
    declared = (
        ["agent1 # agent"]
        + [f"{t}Type # otype" for t in otypes]
        + [f"{t}Type # rtype" for t in rtypes]
        + [f"{o} # object" for o in objects]
        + [f"{r} # receptacle" for r in receptacles]
        + [f"{loc} # location" for loc in locations]
    )
    goal = glib.gdict[task_type]["pddl"].format(
        obj=params["object_target"],
        recep=params["parent_target"],
        toggle=params["toggle_target"],
        mrecep=params["mrecep_target"],
    )
    text = (
        f"\n(define (problem plan_{scene.number})\n    (:domain alfred)\n    (:objects\n        "
        + "\n        ".join(mangle(d) for d in declared)
        + "\n        )\n    (:init\n        "
        + "\n        ".join(mangle(f) for f in init)
        + "\n        )\n"
        + goal
    )
    return text.replace("#", "-")


def settle_targets(scene: Scene, task_type: str, params: dict[str, Any], rng: random.Random) -> None:
    """Put targets on open surfaces (all of them for two-object tasks, else one, half the time).

    ALFWorld's handcoded expert returns to where it first saw the object class and does not
    re-open a container it closed, so a second instance hidden in a container makes most
    two-object games unsolvable for it; and in scenes with 20+ drawers and cabinets an
    exhaustive search overruns the 50-step limit. This bias keeps most draws solvable.
    """
    c = _constants()
    obj, parent = params["object_target"], params["parent_target"]
    spots = sorted(
        r for r, rc in scene.receptacles.items()
        if rc not in c.OPENABLE_CLASS_SET and rc != parent and obj in c.VAL_RECEPTACLE_OBJECTS.get(rc, ())
    )
    targets = scene.instances(obj)
    if task_type != "pick_two_obj_and_place":
        targets = targets[:1] if rng.random() < 0.5 else []
    for o in targets if spots else []:
        scene.placed[o] = rng.choice(spots)
