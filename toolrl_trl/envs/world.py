"""Synthetic executable tools over a small seeded world, and the generator of tasks that need 2-4 dependent calls.

The single-turn generator (:mod:`toolrl_trl.synthetic`) only *describes* calls; here the catalogue's tools (same names,
parameters and descriptions where the catalogue has them, plus ``find_contact`` and ``get_account_balance``) run
against a world: contacts, weather and local time per city, orders, accounts and exchange rates, a calendar, a
thermostat, an outbox and a cart. Each task draws its own world, so an answer cannot be memorised: the model has to
look something up, pass the result to the next call, and answer from what came back.

A task is a *chain* (:data:`CHAINS`): a request with slots, the reference calls (each call's arguments may depend on
earlier results) and the answer sentence. The generator executes the reference calls on the task's world with the
same environment class the trainer uses, so the reference trajectory, end state and answer are what execution gives.

Splits (all from one seed, byte-identical per seed):

* ``train``: chains whose tools are all training tools; prompts listed with training tools only.
* ``unseen_prompts``: the same tools, but request texts that no training task uses: a seeded hash of the request
  text reserves :data:`RESERVED_PROMPT_SHARE` of all texts for evaluation, so every tool, value and phrasing is
  trained on while these combinations never are.
* ``unseen_tools``: chains that use a held-out tool (one no training prompt ever lists).

Environment classes: TRL exposes every public method of an environment class as a tool, so each tool set is its own
class, ``synthetic_world:<tool>+<tool>...`` (built on demand by the ``synthetic_world`` family, see
:mod:`toolrl_trl.envs.base`). ``synthetic_world`` alone is the class with every tool.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolrl_trl import grammar
from toolrl_trl import tool_catalogue as cat
from toolrl_trl.envs.base import ToolEnvironment, get_environment, register, register_family

FAMILY = "synthetic_world"
SPLITS = ("train", "unseen_prompts", "unseen_tools")
#: Share of request texts kept for the ``unseen_prompts`` split (decided by a seeded hash of the text).
RESERVED_PROMPT_SHARE = 0.2
#: The native system prompt (the chat template appends the tool schemas and its own call format).
NATIVE_SYSTEM_PROMPT = (
    "You are a helpful assistant with tools. Call one tool at a time, use what it returns in the next call, "
    "and answer the user from the results."
)
OUTPUT_FORMATS = ("native", "toolrl")
#: The one thought of the ToolRL-grammar transcripts.
THOUGHT = "I will use the tools step by step."

# ---------------------------------------------------------------------------------------------------------------------
# The world: value pools and one seeded draw
# ---------------------------------------------------------------------------------------------------------------------

PEOPLE = cat.PEOPLE
CITIES = cat.CITIES
CONDITIONS = ("sunny", "cloudy", "rainy", "windy", "snowy")
TIMES = cat.TIMES
DATES = cat.DATES
ORDERS = cat.ORDERS
PRODUCTS = cat.PRODUCTS
ORDER_STATUSES = ("shipped", "in transit", "delivered")
ACCOUNTS = ("checking", "savings", "travel")
CURRENCIES = cat.CURRENCIES
#: Units of each currency per US dollar (the world draws one of each list).
RATE_CHOICES = {
    "USD": (1.0,),
    "EUR": (0.9, 0.92, 0.95),
    "GBP": (0.78, 0.8, 0.82),
    "JPY": (140.0, 150.0, 155.0),
    "CAD": (1.3, 1.35, 1.4),
    "AUD": (1.45, 1.5, 1.55),
}
BALANCES = tuple(range(200, 5001, 100))
EMAIL_DOMAINS = ("work.example.com", "home.example.org", "mail.example.net")
ROOMS = cat.ROOMS
SUBJECTS = cat.SUBJECTS
TITLES = cat.TITLES
TEMPERATURES = tuple(range(-5, 36))
THERMOSTAT = tuple(range(17, 26))


def email_address(name: str, domain: str) -> str:
    return f"{name.lower()}@{domain}"


def draw_world(rng: random.Random) -> dict[str, Any]:
    """One world, plain JSON data: what every tool reads and writes."""
    people = rng.sample(PEOPLE, 5)
    contacts = {
        name: {"city": rng.choice(CITIES), "email": email_address(name, rng.choice(EMAIL_DOMAINS))} for name in people
    }
    weather = {city: {"condition": rng.choice(CONDITIONS), "temperature": rng.choice(TEMPERATURES)} for city in CITIES}
    local_time = {city: rng.choice(TIMES) for city in CITIES}
    orders = {
        order: {"eta": rng.choice(DATES), "product": rng.choice(PRODUCTS), "status": rng.choice(ORDER_STATUSES)}
        for order in ORDERS
    }
    accounts = {account: {"balance": rng.choice(BALANCES), "currency": rng.choice(CURRENCIES)} for account in ACCOUNTS}
    rates = {currency: rng.choice(RATE_CHOICES[currency]) for currency in CURRENCIES}
    calendar = [
        {"date": rng.choice(DATES), "time": rng.choice(TIMES), "title": title} for title in rng.sample(TITLES, 3)
    ]
    return {
        "accounts": accounts,
        "calendar": calendar,
        "cart": {},
        "contacts": contacts,
        "local_time": local_time,
        "orders": orders,
        "outbox": [],
        "rates": rates,
        "thermostat": {room: rng.choice(THERMOSTAT) for room in ROOMS},
        "weather": weather,
    }


class WorldToolError(ValueError):
    """A tool call the world cannot serve (an unknown contact, city, order...); the model sees the message."""


def _lookup(table: dict[str, Any], key: Any, what: str) -> Any:
    if not isinstance(key, str) or key not in table:
        raise WorldToolError(f"unknown {what} {key!r}; known: {', '.join(sorted(table))}")
    return table[key]


# ---------------------------------------------------------------------------------------------------------------------
# The tools: deterministic functions of the world (public methods of the environment classes)
# ---------------------------------------------------------------------------------------------------------------------
# They return JSON data (a dict or a list), which the base class turns into text for the model. They carry no return
# annotation on purpose: transformers' get_json_schema would add a "return" entry to every tool schema of every prompt.


def find_contact(self, name: str):
    """Look up a contact by name: their email address and the city they live in.

    Args:
        name: The contact's first name.
    """
    contact = _lookup(self.state["contacts"], name, "contact")
    return {"city": contact["city"], "email": contact["email"], "name": name}


def get_current_weather(self, city: str, units: str = "celsius"):
    """Get the current weather for a city.

    Args:
        city: Name of the city.
        units: Temperature units, celsius or fahrenheit.
    """
    weather = _lookup(self.state["weather"], city, "city")
    if units not in ("celsius", "fahrenheit"):
        raise WorldToolError(f"units must be 'celsius' or 'fahrenheit', got {units!r}")
    temperature = weather["temperature"] if units == "celsius" else round(weather["temperature"] * 9 / 5 + 32)
    return {"city": city, "condition": weather["condition"], "temperature": temperature, "units": units}


def get_local_time(self, city: str):
    """Get the local time in a city.

    Args:
        city: Name of the city.
    """
    return {"city": city, "time": _lookup(self.state["local_time"], city, "city")}


def send_email(self, to: str, subject: str, urgent: bool = False):
    """Send an email to a recipient.

    Args:
        to: Email address of the recipient.
        subject: Subject line.
        urgent: Mark the email as urgent.
    """
    known = sorted(contact["email"] for contact in self.state["contacts"].values())
    if to not in known:
        raise WorldToolError(f"no contact has the address {to!r}; look the address up with find_contact")
    self.state["outbox"].append({"subject": subject, "to": to, "urgent": bool(urgent)})
    return {"status": "sent", "to": to}


def set_thermostat(self, temperature: int, room: str = "living room"):
    """Set the thermostat of a room to a temperature.

    Args:
        temperature: Target temperature in celsius.
        room: Which room.
    """
    _lookup(self.state["thermostat"], room, "room")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise WorldToolError(f"temperature must be a number, got {temperature!r}")
    self.state["thermostat"][room] = temperature
    return {"room": room, "status": "updated", "temperature": temperature}


def track_order(self, order_id: str):
    """Track an order by its order number: its status, delivery date and product.

    Args:
        order_id: The order number.
    """
    order = _lookup(self.state["orders"], order_id, "order")
    return {"eta": order["eta"], "order_id": order_id, "product": order["product"], "status": order["status"]}


def add_to_cart(self, product: str, quantity: int):
    """Add a product to the shopping cart.

    Args:
        product: Name of the product.
        quantity: How many to add.
    """
    if product not in PRODUCTS:
        raise WorldToolError(f"unknown product {product!r}; the store sells: {', '.join(PRODUCTS)}")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise WorldToolError(f"quantity must be a positive whole number, got {quantity!r}")
    cart = self.state["cart"]
    cart[product] = cart.get(product, 0) + quantity
    return {"cart_items": sum(cart.values()), "product": product, "quantity": cart[product]}


def get_account_balance(self, account: str):
    """Get the balance of one of the user's bank accounts and its currency.

    Args:
        account: The account: checking, savings or travel.
    """
    entry = _lookup(self.state["accounts"], account, "account")
    return {"account": account, "balance": entry["balance"], "currency": entry["currency"]}


def convert_currency(self, amount: float, from_currency: str, to_currency: str):
    """Convert an amount of money from one currency to another.

    Args:
        amount: The amount to convert.
        from_currency: Currency code to convert from.
        to_currency: Currency code to convert to.
    """
    rates = self.state["rates"]
    source = _lookup(rates, from_currency, "currency")
    target = _lookup(rates, to_currency, "currency")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise WorldToolError(f"amount must be a number, got {amount!r}")
    return {"converted": round(amount * target / source, 2), "currency": to_currency}


def list_calendar_events(self, date: str):
    """List the calendar events of a day.

    Args:
        date: The date in YYYY-MM-DD format.
    """
    return [{"time": e["time"], "title": e["title"]} for e in self.state["calendar"] if e["date"] == date]


def create_calendar_event(self, title: str, date: str, time: str):
    """Create an event in the calendar.

    Args:
        title: Title of the event.
        date: The date in YYYY-MM-DD format.
        time: Start time in HH:MM format.
    """
    if date not in DATES:
        raise WorldToolError(f"date must be one of the calendar's days ({', '.join(DATES)}), got {date!r}")
    self.state["calendar"].append({"date": date, "time": time, "title": title})
    return {"status": "created", "title": title}


#: Every tool of the world, in a fixed order (the order of held-out draws).
TOOLS: dict[str, Callable[..., Any]] = {
    function.__name__: function
    for function in (
        find_contact,
        get_current_weather,
        get_local_time,
        send_email,
        set_thermostat,
        track_order,
        add_to_cart,
        get_account_balance,
        convert_currency,
        list_calendar_events,
        create_calendar_event,
    )
}


class SyntheticWorld(ToolEnvironment):
    """The world's state behind the tools; subclasses (one per tool set) add the tools as public methods."""

    state: dict[str, Any]

    def _load(self, task: dict[str, Any]) -> None:
        self.state = copy.deepcopy(task["initial_state"])

    def end_state(self) -> dict[str, Any]:
        """The whole world after the episode (plain JSON data, comparable to ``task['reference_state']``)."""
        return copy.deepcopy(self.state)


def env_name(tools: Sequence[str]) -> str:
    """The registry name of the class exposing exactly ``tools``."""
    return f"{FAMILY}:{'+'.join(sorted(tools))}"


def build_world_class(spec: str) -> type[SyntheticWorld]:
    """The class for ``synthetic_world:<tool>+<tool>...``: :class:`SyntheticWorld` with exactly those tools."""
    names = [name for name in spec.split("+") if name]
    unknown = [name for name in names if name not in TOOLS]
    if not names or unknown:
        raise KeyError(f"{FAMILY}:{spec}: unknown tool(s) {unknown or '(none given)'}; valid: {list(TOOLS)}")
    namespace = {name: TOOLS[name] for name in sorted(set(names))}
    return type(f"SyntheticWorld[{'+'.join(sorted(set(names)))}]", (SyntheticWorld,), namespace)


register_family(FAMILY, build_world_class)
AllToolsWorld = register(FAMILY)(build_world_class("+".join(TOOLS)))


def tool_spec(name: str) -> grammar.ToolSpec:
    """A world tool as the ToolRL system prompt lists it (name, description, typed parameters)."""
    from transformers.utils import get_json_schema

    schema = get_json_schema(TOOLS[name])["function"]
    params = {
        key: {"description": value.get("description", ""), "type": value.get("type", "string")}
        for key, value in schema["parameters"]["properties"].items()
    }
    return grammar.ToolSpec(name, schema["description"], params)


# ---------------------------------------------------------------------------------------------------------------------
# Chains: what a task asks, the reference calls, the answer
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One reference call: its tool and a function from (slots, earlier results) to its arguments."""

    tool: str
    arguments: Callable[[dict[str, Any], list[Any]], dict[str, Any]]


@dataclass(frozen=True)
class Chain:
    """A task template: request phrasings with ``{slot}``s, slot pools, the reference steps and the answer."""

    name: str
    requests: tuple[str, ...]
    slots: dict[str, Callable[[random.Random, dict[str, Any]], Any]]
    steps: tuple[Step, ...]
    answer: Callable[[dict[str, Any], list[Any]], tuple[str, str]]  # (answer sentence, fact it must contain)

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(step.tool for step in self.steps))


def _person(rng: random.Random, world: dict[str, Any]) -> str:
    return rng.choice(sorted(world["contacts"]))


def _choice(pool: Sequence[Any]) -> Callable[[random.Random, dict[str, Any]], Any]:
    return lambda rng, world: rng.choice(pool)


CHAINS: tuple[Chain, ...] = (
    Chain(
        name="contact_weather",
        requests=(
            "What is the weather like where {name} lives?",
            "How warm is it in {name}'s city right now?",
            "Check the current weather in the city of my contact {name}.",
            "Is it sunny where {name} is?",
        ),
        slots={"name": _person},
        steps=(
            Step("find_contact", lambda s, r: {"name": s["name"]}),
            Step("get_current_weather", lambda s, r: {"city": r[0]["city"]}),
        ),
        answer=lambda s, r: (
            f"It is {r[1]['temperature']} degrees and {r[1]['condition']} in {r[1]['city']}.",
            str(r[1]["temperature"]),
        ),
    ),
    Chain(
        name="contact_time",
        requests=(
            "What time is it where {name} lives?",
            "Tell me the local time in {name}'s city.",
            "Can I call {name} now? What time is it in their city?",
        ),
        slots={"name": _person},
        steps=(
            Step("find_contact", lambda s, r: {"name": s["name"]}),
            Step("get_local_time", lambda s, r: {"city": r[0]["city"]}),
        ),
        answer=lambda s, r: (f"It is {r[1]['time']} in {r[1]['city']}.", r[1]["time"]),
    ),
    Chain(
        name="contact_email",
        requests=(
            "Email {name} with the subject {subject}.",
            "Send {name} an email about {subject}.",
            "Write to {name}: subject {subject}.",
        ),
        slots={"name": _person, "subject": _choice(SUBJECTS)},
        steps=(
            Step("find_contact", lambda s, r: {"name": s["name"]}),
            Step("send_email", lambda s, r: {"to": r[0]["email"], "subject": s["subject"]}),
        ),
        answer=lambda s, r: (f"I sent {s['subject']} to {r[1]['to']}.", r[1]["to"]),
    ),
    Chain(
        name="order_reorder",
        requests=(
            "Add {quantity} more of the product in order {order_id} to my cart.",
            "I want {quantity} more of what I bought in order {order_id}; put them in the cart.",
            "Reorder order {order_id}: {quantity} of the same product, please.",
        ),
        slots={"order_id": _choice(ORDERS), "quantity": _choice((1, 2, 3, 4, 5))},
        steps=(
            Step("track_order", lambda s, r: {"order_id": s["order_id"]}),
            Step("add_to_cart", lambda s, r: {"product": r[0]["product"], "quantity": s["quantity"]}),
        ),
        answer=lambda s, r: (f"I added {s['quantity']} {r[1]['product']} to your cart.", r[1]["product"]),
    ),
    Chain(
        name="balance_convert",
        requests=(
            "How much is my {account} account worth in {to_currency}?",
            "Convert the balance of my {account} account to {to_currency}.",
            "What is my {account} balance in {to_currency}?",
        ),
        slots={"account": _choice(ACCOUNTS), "to_currency": _choice(CURRENCIES)},
        steps=(
            Step("get_account_balance", lambda s, r: {"account": s["account"]}),
            Step(
                "convert_currency",
                lambda s, r: {
                    "amount": r[0]["balance"],
                    "from_currency": r[0]["currency"],
                    "to_currency": s["to_currency"],
                },
            ),
        ),
        answer=lambda s, r: (
            f"Your {s['account']} balance is {r[1]['converted']} {s['to_currency']}.",
            str(r[1]["converted"]),
        ),
    ),
    Chain(
        name="contact_weather_thermostat",
        requests=(
            "Set my thermostat to the temperature it is where {name} lives.",
            "Make the {room} as warm as it is in {name}'s city.",
        ),
        slots={"name": _person, "room": _choice(ROOMS)},
        steps=(
            Step("find_contact", lambda s, r: {"name": s["name"]}),
            Step("get_current_weather", lambda s, r: {"city": r[0]["city"]}),
            Step("set_thermostat", lambda s, r: {"temperature": r[1]["temperature"], "room": s["room"]}),
        ),
        answer=lambda s, r: (
            f"The {s['room']} thermostat is set to {r[1]['temperature']} degrees, as in {r[1]['city']}.",
            str(r[1]["temperature"]),
        ),
    ),
    Chain(
        name="contact_time_event",
        requests=(
            "Put a call with {name} in my calendar on {date} at the current time in {name}'s city.",
            "Schedule Call {name} on {date}, at the time it is now where {name} lives.",
        ),
        slots={"name": _person, "date": _choice(DATES)},
        steps=(
            Step("find_contact", lambda s, r: {"name": s["name"]}),
            Step("get_local_time", lambda s, r: {"city": r[0]["city"]}),
            Step(
                "create_calendar_event",
                lambda s, r: {"title": f"Call {s['name']}", "date": s["date"], "time": r[1]["time"]},
            ),
        ),
        answer=lambda s, r: (f"I scheduled Call {s['name']} on {s['date']} at {r[1]['time']}.", r[1]["time"]),
    ),
    Chain(
        name="contact_report_email",
        requests=(
            "Check the weather and the time where {name} lives, tell me, and email {name} about {subject}.",
            "Email {name} about {subject}, and tell me the weather and local time in their city.",
        ),
        slots={"name": _person, "subject": _choice(SUBJECTS)},
        steps=(
            Step("find_contact", lambda s, r: {"name": s["name"]}),
            Step("get_current_weather", lambda s, r: {"city": r[0]["city"]}),
            Step("get_local_time", lambda s, r: {"city": r[0]["city"]}),
            Step("send_email", lambda s, r: {"to": r[0]["email"], "subject": s["subject"]}),
        ),
        answer=lambda s, r: (
            f"It is {r[1]['temperature']} degrees at {r[2]['time']} in {r[1]['city']}; I emailed {r[3]['to']}.",
            str(r[1]["temperature"]),
        ),
    ),
)
CHAINS_BY_NAME = {chain.name: chain for chain in CHAINS}
#: The chains of two dependent calls (the tiny CPU measurement trains and evaluates on these).
TWO_STEP_CHAINS = tuple(chain.name for chain in CHAINS if len(chain.steps) == 2)


def get_chain(name: str) -> Chain:
    """The chain named ``name``; an unknown name lists the valid ones."""
    if name not in CHAINS_BY_NAME:
        raise KeyError(f"unknown chain {name!r}; valid: {list(CHAINS_BY_NAME)}")
    return CHAINS_BY_NAME[name]


def parse_chains(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """Chain names from a comma-separated string (``all``, ``two_step`` or names); an unknown name is a
    ``ValueError`` that lists the valid ones."""
    if spec is None or spec == "" or spec == "all":
        return tuple(CHAINS_BY_NAME)
    if spec == "two_step":
        return TWO_STEP_CHAINS
    names = [part.strip() for part in spec.split(",")] if isinstance(spec, str) else list(spec)
    for name in names:
        if name not in CHAINS_BY_NAME:  # a user's value (a flag, a recipe key): ValueError, as options raise
            raise ValueError(f"unknown chain {name!r}; valid: all, two_step, {', '.join(CHAINS_BY_NAME)}")
    return tuple(dict.fromkeys(names))


def select_held_out_tools(held_out: float, seed: int) -> tuple[str, ...]:
    """World tools kept out of training: ``held_out`` >= 1 a count, 0 < ``held_out`` < 1 a fraction (seeded)."""
    if held_out < 0:
        raise ValueError(f"held-out tools must be >= 0, got {held_out}")
    if held_out == 0:
        return ()
    count = max(1, round(held_out * len(TOOLS))) if held_out < 1 else int(held_out)
    if held_out >= 1 and held_out != int(held_out):
        raise ValueError(f"a held-out count must be a whole number (or a fraction below 1), got {held_out}")
    if count > len(TOOLS) - 2:
        raise ValueError(f"cannot hold out {count} of {len(TOOLS)} world tools")
    return tuple(sorted(random.Random(f"toolrl-world:{seed}:held-out").sample(list(TOOLS), count)))


# ---------------------------------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldTask:
    """One executed task: its prompt, the protocol's ``task`` record and the reference transcript."""

    chain: str
    split: str
    request: str
    tools: tuple[str, ...]  # listed in the prompt (chain tools + distractors), sorted
    task: dict[str, Any]
    results: tuple[Any, ...]  # each reference call's result (as the tool returned it)
    answer: str  # the reference answer sentence
    held_out: bool = False
    slots: dict[str, Any] = field(default_factory=dict)  # the request's slot values

    def replay(self, calls: Sequence[dict[str, Any]]) -> tuple[list[Any], dict[str, Any], str]:
        """Run other ``calls`` (same tools, in the chain's order) on this task's world: (results, end state, the
        answer the chain would give from those results)."""
        results, end_state = execute(self.task, calls)
        sentence, _ = get_chain(self.chain).answer(self.slots, results)
        return results, end_state, sentence

    @property
    def env_name(self) -> str:
        return self.task["env"]

    def prompt(self, output_format: str = "native") -> list[dict[str, str]]:
        """The chat prompt: system + user. Native: a short system prompt (the chat template adds the tools);
        ToolRL grammar: the paper's system prompt with the tool list and the paper's user turn."""
        if output_format == "native":
            return [{"role": "system", "content": NATIVE_SYSTEM_PROMPT}, {"role": "user", "content": self.request}]
        if output_format == "toolrl":
            system = grammar.render_system_prompt([tool_spec(name) for name in self.tools])
            return [
                {"role": "system", "content": system},
                {"role": "user", "content": grammar.render_user_message(self.request)},
            ]
        raise ValueError(f"unknown output_format {output_format!r}; valid: {list(OUTPUT_FORMATS)}")

    def row(self, output_format: str = "native") -> dict[str, Any]:
        """The dataset row of the protocol: ``prompt``, ``task`` (JSON) and ``env_name``."""
        return {
            "prompt": self.prompt(output_format),
            "task": json.dumps(self.task, sort_keys=True),
            "env_name": self.env_name,
        }

    def transcript(
        self, output_format: str = "native", calls: Sequence[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """The turns after the prompt: one call per assistant turn, its tool result, then the answer.

        ``calls``: other calls than the reference ones, executed on the task's world (results and answer follow).
        """
        if calls is None:
            calls, results, answer = self.task["reference_calls"], self.results, self.answer
        else:
            results, _, answer = self.replay(calls)
        messages: list[dict[str, Any]] = []
        for call, result in zip(calls, results, strict=True):
            text = json.dumps(result, sort_keys=True)
            if output_format == "native":
                function = {"name": call["name"], "arguments": call["arguments"]}
                messages.append(
                    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": function}]}
                )
            else:
                line = json.dumps({"name": call["name"], "parameters": call["arguments"]})
                content = f"{grammar.THINK_OPEN} {THOUGHT} {grammar.THINK_CLOSE}\n{grammar.TOOL_CALL_OPEN}\n{line}\n{grammar.TOOL_CALL_CLOSE}"
                messages.append({"role": "assistant", "content": content})
            messages.append({"role": "tool", "name": call["name"], "content": text})
        if output_format == "native":
            messages.append({"role": "assistant", "content": answer})
        else:
            content = f"{grammar.THINK_OPEN} {THOUGHT} {grammar.THINK_CLOSE}\n{grammar.RESPONSE_OPEN} {answer} {grammar.RESPONSE_CLOSE}"
            messages.append({"role": "assistant", "content": content})
        return messages


def _reserved(seed: int, text: str) -> bool:
    """Whether a request text belongs to the evaluation-only share (seeded, independent of draw order)."""
    digest = hashlib.sha256(f"toolrl-world:{seed}:prompt:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < RESERVED_PROMPT_SHARE


def execute(task: dict[str, Any], calls: Sequence[dict[str, Any]]) -> tuple[list[Any], dict[str, Any]]:
    """Run ``calls`` on the task's world with its own environment class: (each call's parsed result, end state)."""
    env = get_environment(task["env"])()
    env.reset(task=json.dumps(task))
    results = []
    for call in calls:
        results.append(json.loads(getattr(env, call["name"])(**call["arguments"])))
    return results, env.end_state()


@dataclass
class WorldGenerator:
    """Seeded generator of executed tasks; ``tasks(split, n)`` is byte-identical for the same arguments.

    ``chains``: which chains to draw (names; see :data:`CHAINS`). ``distractors``: extra training tools listed in a
    prompt beside the chain's own. ``held_out_tools``: tools no training prompt lists (count or fraction).
    """

    seed: int = 0
    chains: tuple[str, ...] = field(default_factory=lambda: tuple(CHAINS_BY_NAME))
    distractors: int = 1
    held_out_tools: float = 0

    def __post_init__(self) -> None:
        self.chains = parse_chains(self.chains)
        if self.distractors < 0:
            raise ValueError(f"distractors must be >= 0, got {self.distractors}")
        self.held_out = select_held_out_tools(self.held_out_tools, self.seed)
        self.train_tools = tuple(name for name in TOOLS if name not in self.held_out)
        chains = [get_chain(name) for name in self.chains]
        self.train_chains = tuple(c for c in chains if not set(c.tools) & set(self.held_out))
        self.test_chains = tuple(c for c in chains if set(c.tools) & set(self.held_out))

    def tasks(self, split: str, count: int) -> list[WorldTask]:
        """``count`` tasks of ``split`` (see the module docstring); one random stream per split."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {list(SPLITS)}")
        pool = self.test_chains if split == "unseen_tools" else self.train_chains
        if count and not pool:
            raise ValueError(
                f"no chain fits split {split!r}: chains {list(self.chains)}, held-out tools {list(self.held_out)}"
            )
        rng = random.Random(f"toolrl-world:{self.seed}:{split}")
        tasks: list[WorldTask] = []
        attempts = 0
        while len(tasks) < count:
            attempts += 1
            if attempts > 1000 * (count + 1):
                raise RuntimeError(f"could not draw {count} {split} tasks from chains {list(self.chains)}")
            task = self._draw(rng, rng.choice(pool), split)
            if task is not None:
                tasks.append(task)
        return tasks

    def _draw(self, rng: random.Random, chain: Chain, split: str) -> WorldTask | None:
        world = draw_world(rng)
        slots = {name: pick(rng, world) for name, pick in chain.slots.items()}
        request = rng.choice(chain.requests).format(**slots)
        if split != "unseen_tools" and _reserved(self.seed, request) != (split == "unseen_prompts"):
            return None
        listable = self.train_tools if split != "unseen_tools" else tuple(TOOLS)
        others = [name for name in listable if name not in chain.tools]
        tools = tuple(sorted((*chain.tools, *rng.sample(others, min(self.distractors, len(others))))))
        calls: list[dict[str, Any]] = []
        results: list[Any] = []
        task: dict[str, Any] = {
            "env": env_name(tools),
            "initial_state": world,
            "reference_calls": calls,
            "reference_state": None,
            "reference_answer": None,
            "chain": chain.name,
            "split": split,
        }
        # Execute step by step on the trainer's own class: a step's arguments may read the earlier results.
        env = get_environment(task["env"])()
        env.reset(task=task)
        for step in chain.steps:
            calls.append({"name": step.tool, "arguments": step.arguments(slots, results)})
            results.append(json.loads(getattr(env, step.tool)(**calls[-1]["arguments"])))
        end_state = env.end_state()
        sentence, fact = chain.answer(slots, results)
        task["reference_state"] = end_state
        task["reference_answer"] = fact
        return WorldTask(
            chain=chain.name,
            split=split,
            request=request,
            tools=tools,
            task=task,
            results=tuple(results),
            answer=sentence,
            held_out=split == "unseen_tools",
            slots=slots,
        )


def world_vocabulary() -> list[str]:
    """Every name and value a world can hold, for a tiny tokenizer's whole-word tokens (as the demo does)."""
    words: set[str] = set(TOOLS) | set(PEOPLE) | set(CITIES) | set(CONDITIONS) | set(ORDERS) | set(ACCOUNTS)
    words |= set(CURRENCIES) | set(DATES) | set(TIMES) | set(EMAIL_DOMAINS)
    words |= {email_address(name, domain) for name in PEOPLE for domain in EMAIL_DOMAINS}
    words |= {word for product in PRODUCTS for word in product.split()}
    return sorted(words)
