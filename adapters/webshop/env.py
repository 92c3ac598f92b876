"""The ``webshop`` env: pawkit's Env interface over the shop engine, verl-agent's prompt pieces.

Construction is free; the catalogue (generated on first use if no data is given), the goals and
the search index load at the first ``reset``/``tasks`` call and are shared within the process.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from pawkit.protocol import Env, Observation, StepResult, Task, check_split
from pawkit_adapters.webshop.catalog import Catalog, load_catalog, resolve_dir
from pawkit_adapters.webshop.engine import DONE, PER_PAGE, RESULTS, SEARCH, SEP, SUB, Session, Shop
from pawkit_adapters.webshop.products import Goal

SEARCH_PLACEHOLDER = "search[<your query>]"
SEARCH_ACTIONS = ("placeholder", "instruction")
_PRICE_CLAUSE = ", and price lower than"


class WebShopEnv(Env):
    """Buy the product an instruction describes, on WebShop's pages, actions and reward."""

    name = "webshop"
    splits = ("train", "dev", "test")
    max_steps = 15
    role = "You are an expert autonomous agent operating in the WebShop e-commerce environment."

    def __init__(self, data_dir: str | None = None, products: int = 1000, catalog_seed: int = 0,
                 num_products: int | None = None, human_goals: bool = False, use_small: bool = True,
                 seed: int = 42, max_steps: int = 15, reward_scale: float = 1.0, success_reward: bool = False,
                 lowercase_actions: bool = True, search_action: str = "placeholder",
                 results_per_page: int = PER_PAGE) -> None:
        """``products``/``catalog_seed``: size and seed of the generated catalogue (used when no
        ``data_dir`` or ``$WEBSHOP_DATA``); ``seed``: ranged-price and price-ceiling draws;
        ``reward_scale``: reward = scale x score, or scale x (score == 1) with ``success_reward``
        (verl-agent: scale 10, success_reward true); ``search_action``: "placeholder" lists
        verl-agent's literal ``search[<your query>]``, "instruction" lists ``search[<instruction
        words>]`` instead, so constrained decoding over the admissible list can run a real search;
        ``results_per_page``: products per results page (WebShop: 10; fewer = shorter prompts)."""
        if products < 1:
            raise ValueError(f"webshop products must be >= 1, not {products}")
        if search_action not in SEARCH_ACTIONS:
            raise ValueError(f"webshop search_action must be one of {', '.join(SEARCH_ACTIONS)}, not {search_action!r}")
        if max_steps < 1:
            raise ValueError(f"webshop max_steps must be >= 1, not {max_steps}")
        if results_per_page < 1:
            raise ValueError(f"webshop results_per_page must be >= 1, not {results_per_page}")
        self.results_per_page = results_per_page
        self._where = (data_dir, products, catalog_seed)
        self._load_args = (num_products, human_goals, use_small, seed)
        self.max_steps = max_steps
        self.reward_scale = float(reward_scale)
        self.max_return = self.reward_scale
        self.success_reward = success_reward
        self.lowercase_actions = lowercase_actions
        self.search_action = search_action
        self._catalog: Catalog | None = None
        self._shop: Shop | None = None
        self._session: Session | None = None
        self._turn = 0
        self._done = True

    # --- data ------------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            folder = resolve_dir(*self._where)
            self._catalog = load_catalog(folder, *self._load_args)
            self._shop = Shop(self._catalog.products, self._catalog.engine.search, self.results_per_page)
        return self._catalog

    @property
    def shop(self) -> Shop:
        self.catalog
        return self._shop  # type: ignore[return-value]

    def tasks(self, split: str = "train") -> Sequence[Task]:
        check_split(self, split)
        goals = self.catalog.goals
        return [Task(id=f"goal-{i}", split=split, seed=i, description=goals[i].instruction_text, info={"goal": i})
                for i in self.catalog.splits[split]]

    # --- episode ------------------------------------------------------------------------------
    def reset(self, task: Task | None = None, seed: int | None = None) -> Observation:
        goals = self.catalog.goals
        if task is not None and "goal" in task.info:
            index = int(task.info["goal"])
        elif task is not None and task.seed is not None:
            index = task.seed
        else:  # WebShop's weighted draw (rarer attributes weigh more), over the train split
            train = self.catalog.splits["train"] or range(len(goals))
            rng = random.Random(seed)
            index = rng.choices(list(train), weights=[goals[i].weight for i in train])[0]
        if not 0 <= index < len(goals):
            raise ValueError(f"webshop goal {index} out of range; there are {len(goals)} goals")
        self._session = Session(goal=goals[index])
        self._turn = 0
        self._done = False
        return self._observe()

    def step(self, command: str) -> StepResult:
        if self._done or self._session is None:
            raise RuntimeError("webshop: the episode is over; call reset() first")
        self._turn += 1
        action = command.strip()
        if self.lowercase_actions:
            action = action.lower()
        outcome = self.shop.act(self._session, action)
        info: dict[str, Any] = {"invalid_action": not outcome.valid, "turn": self._turn, "task_score": 0.0}
        reward, success, done = 0.0, False, outcome.done
        if outcome.done:
            score = outcome.reward
            success = score == 1.0
            info.update(task_score=score, won=success, reward_breakdown=outcome.info, asin=self._session.asin,
                        target_asin=self._session.goal.asin)
            reward = self.reward_scale * (float(success) if self.success_reward else score)
        elif self._turn >= self.max_steps:
            done = True
            info["won"] = False
        self._done = done
        return StepResult(observation=self._observe(), reward=reward, done=done, success=success, info=info)

    @property
    def goal(self) -> Goal:
        if self._session is None:
            raise RuntimeError("webshop: call reset() first")
        return self._session.goal

    def _observe(self) -> Observation:
        s = self._session
        assert s is not None
        clickables = self.shop.clickables(s)
        search = SEARCH_PLACEHOLDER if self.search_action == "placeholder" else f"search[{expert_query(s.goal)}]"
        actions = ([search] if s.page == SEARCH else []) + [f"click[{c}]" for c in clickables]
        return Observation(text=self.shop.text(s), admissible_actions=actions, task=s.goal.instruction_text,
                           info={"page": s.page})

    # --- policies ------------------------------------------------------------------------------
    def expert_action(self) -> str:
        """Search the instruction's words, page to the goal product (else search its title), pick
        the goal options, buy."""
        s = self._session
        if s is None or self._done:
            raise RuntimeError("webshop: no episode in progress")
        goal = s.goal
        if s.page in (SEARCH, DONE):
            return f"search[{expert_query(goal)}]"
        if s.page == SUB:
            return "click[< prev]"
        if s.page == RESULTS:
            if s.asin is None and goal.asin.lower() in self.shop.clickables(s):
                return f"click[{goal.asin.lower()}]"
            hits = self.shop.results(s)
            if goal.asin in hits and (s.page_num - 1) * self.results_per_page < hits.index(goal.asin):
                return "click[next >]"
            if goal.asin in hits:
                return "click[< prev]"
            return f"search[{self.catalog.products[goal.asin].name.lower()}]"
        if s.asin != goal.asin:
            return "click[< prev]"
        for value in _wanted_values(goal):
            if value not in s.options.values() and value in self.shop.clickables(s):
                return f"click[{value}]"
        return "click[buy now]"

    def random_action(self, observation: Observation, rng: random.Random) -> str:
        """Uniform over the admissible actions; the search placeholder becomes 1-4 instruction words."""
        action = super().random_action(observation, rng)
        if action == SEARCH_PLACEHOLDER:
            words = (observation.task or "shop").split(_PRICE_CLAUSE)[0].split()
            return f"search[{' '.join(rng.sample(words, min(len(words), rng.randint(1, 4))))}]"
        return action

    # --- prompt pieces (verl-agent's WebShop conventions) ---------------------------------
    def format_observation(self, observation: Observation) -> str:
        """The page after the instruction, each piece in single quotes (the raw page if no instruction)."""
        parts = observation.text.split(SEP)
        if observation.task is None or observation.task not in parts:
            return observation.text
        rest = parts[parts.index(observation.task) + 1:]
        return SEP.join(f"'{p}'" for p in rest)

    def format_admissible(self, actions: Sequence[str]) -> str:
        """One ``'action',`` per line; the prompt wraps it as ``[`` ... ``].``"""
        return "\n" + "".join(f"'{a}',\n" for a in actions)

    def anchor(self, observation: Observation) -> str:
        return self.format_observation(observation)


def expert_query(goal: Goal) -> str:
    """The instruction without its price clause: the words a careful shopper types."""
    return goal.instruction_text.split(_PRICE_CLAUSE)[0].lower()


def _wanted_values(goal: Goal) -> list[str]:
    return list(goal.options.values()) if isinstance(goal.options, dict) else list(goal.options)
