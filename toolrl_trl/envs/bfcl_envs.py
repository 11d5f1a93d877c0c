"""BFCL's stateful APIs as training environments, with tasks this project generates (never BFCL's own entries).

bfcl-eval ships the Python classes its multi-turn category executes (``bfcl_eval/eval_checker/multi_turn_eval/
func_source_code``). This module wraps three of them for TRL's ``environment_factory``, delegating every call to
BFCL's own class (imported, not copied), so the dynamics the model learns are the ones BFCL evaluates:

* ``bfcl_ticket``  - ``TicketAPI`` (support tickets: log in, create, look up, edit, resolve, close);
* ``bfcl_message`` - ``MessageAPI`` (workspace messaging: users, log in, send, delete, search, stats);
* ``bfcl_vehicle`` - ``VehicleControlAPI`` (doors, brake pedal, engine, fuel, climate, lights, navigation, tyres).

State follows BFCL's conventions: ``task["initial_state"]`` is BFCL's ``initial_config`` shape
(``{"TicketAPI": <scenario>}``, loaded with the class's own ``_load_scenario``), and :meth:`end_state` is what BFCL's
multi-turn ``state_checker`` compares: the instance's public attributes (sets as sorted lists, so it is JSON).
Tool names and argument names are BFCL's (camelCase included), so a policy trained here calls BFCL's functions by
their BFCL names. BFCL reports failures as ``{"error": ...}`` results; the wrappers raise them instead, so the base
class records them in ``calls`` and TRL shows the model ``{"error": ...}`` as BFCL would.

Tasks come from seeded templates (:data:`TEMPLATES`): a random initial state, a goal that needs 2-4 calls, the
reference calls executed on the environment class itself to get the reference end state, and a short reference
answer when the goal asks for information. Every generated question is checked against BFCL's multi-turn
questions (:mod:`toolrl_trl.envs.decontamination`) before the task source hands rows to training.

``task_source: bfcl_stateful`` in a multi-turn recipe trains on them (:func:`build_task_source`).
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from toolrl_trl.envs.base import ENVIRONMENTS, ToolEnvironment, register
from toolrl_trl.envs.multiturn import register_task_source

logger = logging.getLogger(__name__)

BFCL_SOURCE_PACKAGE = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"
#: Name of the task source (``task_source: bfcl_stateful`` in a multi-turn recipe): all wrapped APIs, mixed.
TASK_SOURCE = "bfcl_stateful"


class BfclUnavailableError(ImportError):
    """bfcl-eval (the package holding BFCL's API classes) is not installed."""


class BfclApiError(RuntimeError):
    """A BFCL API answered a call with its ``{"error": ...}`` convention."""


def load_api_class(module: str, class_name: str) -> type:
    """BFCL's API class (imported on first use, so this module imports without bfcl-eval)."""
    try:
        return getattr(importlib.import_module(f"{BFCL_SOURCE_PACKAGE}.{module}"), class_name)
    except ImportError as err:
        raise BfclUnavailableError(
            f"BFCL's {class_name} could not be imported ({err}); install bfcl-eval without its dependencies: "
            'pip install --no-deps "bfcl-eval==2026.3.23" (or `make install`)'
        ) from err


def bfcl_available() -> bool:
    """Whether every wrapped BFCL class imports."""
    try:
        for env in (BfclTicketEnv, BfclMessageEnv, BfclVehicleEnv):
            load_api_class(env.bfcl_module, env.bfcl_class)
    except BfclUnavailableError:
        return False
    return True


def _jsonable(value: Any) -> Any:
    """BFCL state as JSON data: sets become sorted lists and tuples lists (MessageAPI keeps a set of ids)."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(item) for item in value)
    return value


def _bfcl_error(result: Any) -> str | None:
    """The message of BFCL's error convention (a dict, or a list holding one dict, with an ``error`` key)."""
    if isinstance(result, dict) and "error" in result:
        return str(result["error"])
    if isinstance(result, list) and len(result) == 1 and isinstance(result[0], dict) and "error" in result[0]:
        return str(result[0]["error"])
    return None


class BfclEnvironment(ToolEnvironment):
    """One BFCL API instance per episode; subclasses name the class and expose a subset of its methods as tools."""

    #: Module (under :data:`BFCL_SOURCE_PACKAGE`) and class name of the wrapped BFCL API.
    bfcl_module: ClassVar[str]
    bfcl_class: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self._api: Any = None

    def _load(self, task: dict[str, Any]) -> None:
        scenario = copy.deepcopy(task["initial_state"].get(self.bfcl_class, {}))
        api = load_api_class(self.bfcl_module, self.bfcl_class)()
        api._load_scenario(self._prepare_scenario(scenario))
        self._api = api

    def _prepare_scenario(self, scenario: dict[str, Any]) -> dict[str, Any]:
        """Turn the JSON scenario into what ``_load_scenario`` expects (a hook for non-JSON types)."""
        return scenario

    def _invoke(self, method: str, **kwargs: Any) -> Any:
        if self._api is None:
            raise RuntimeError("the environment has no episode: reset(**row) must be called before its tools")
        result = getattr(self._api, method)(**kwargs)
        error = _bfcl_error(result)
        if error is not None:
            raise BfclApiError(error)
        return _jsonable(result)

    def end_state(self) -> dict[str, Any]:
        """BFCL's checked state: the API instance's public attributes, keyed by BFCL class name, as JSON data."""
        if self._api is None:
            raise RuntimeError("the environment has no episode: reset(**row) must be called before end_state()")
        state = {key: value for key, value in vars(self._api).items() if not key.startswith("_")}
        return {self.bfcl_class: json.loads(json.dumps(_jsonable(state), sort_keys=True))}


# ---------------------------------------------------------------------------------------------------------------------
# The environments (tool docstrings are what the model reads: TRL builds each tool's schema from them)
# ---------------------------------------------------------------------------------------------------------------------


@register("bfcl_ticket")
class BfclTicketEnv(BfclEnvironment):
    """BFCL's TicketAPI: a support-ticket queue; creating and listing one's own tickets need a login."""

    bfcl_module = "ticket_api"
    bfcl_class = "TicketAPI"

    def ticket_login(self, username: str, password: str) -> dict:
        """Log in to the ticket system.

        Args:
            username: Username of the user.
            password: Password of the user.
        """
        return self._invoke("ticket_login", username=username, password=password)

    def logout(self) -> dict:
        """Log the current user out of the ticket system."""
        return self._invoke("logout")

    def create_ticket(self, title: str, description: str = "", priority: int = 1) -> dict:
        """Create a support ticket owned by the logged-in user and put it in the queue.

        Args:
            title: Title of the ticket.
            description: Description of the ticket.
            priority: Priority from 1 (lowest) to 5 (highest).
        """
        return self._invoke("create_ticket", title=title, description=description, priority=priority)

    def get_ticket(self, ticket_id: int) -> dict:
        """Get a ticket by its ID (title, description, status, priority, creator).

        Args:
            ticket_id: ID of the ticket.
        """
        return self._invoke("get_ticket", ticket_id=ticket_id)

    def get_user_tickets(self, status: str | None = None) -> dict:
        """List the tickets created by the logged-in user, optionally only those with a given status.

        Args:
            status: Only return tickets with this status (for example "Open"); all tickets when omitted.
        """
        return {"tickets": self._invoke("get_user_tickets", status=status)}

    def edit_ticket(
        self,
        ticket_id: int,
        title: str | None = None,
        description: str | None = None,
        status: str | None = None,
        priority: int | None = None,
    ) -> dict:
        """Change fields of an existing ticket; omitted fields stay as they are.

        Args:
            ticket_id: ID of the ticket to change.
            title: New title.
            description: New description.
            status: New status (for example "In Progress").
            priority: New priority from 1 to 5.
        """
        updates = {"title": title, "description": description, "status": status, "priority": priority}
        return self._invoke("edit_ticket", ticket_id=ticket_id, updates=updates)

    def resolve_ticket(self, ticket_id: int, resolution: str) -> dict:
        """Mark a ticket as resolved and record how it was resolved.

        Args:
            ticket_id: ID of the ticket.
            resolution: What was done to resolve it.
        """
        return self._invoke("resolve_ticket", ticket_id=ticket_id, resolution=resolution)

    def close_ticket(self, ticket_id: int) -> dict:
        """Close a ticket.

        Args:
            ticket_id: ID of the ticket.
        """
        return self._invoke("close_ticket", ticket_id=ticket_id)


@register("bfcl_message")
class BfclMessageEnv(BfclEnvironment):
    """BFCL's MessageAPI: a workspace of users with an inbox of sent messages; most actions need a login."""

    bfcl_module = "message_api"
    bfcl_class = "MessageAPI"

    def _prepare_scenario(self, scenario: dict[str, Any]) -> dict[str, Any]:
        # MessageAPI keeps the ids it generated in a set; JSON stores them as a list.
        if "generated_ids" in scenario:
            scenario["generated_ids"] = set(scenario["generated_ids"])
        return scenario

    def list_users(self) -> dict:
        """List the names of all users in the workspace."""
        return self._invoke("list_users")

    def get_user_id(self, user: str) -> dict:
        """Get the user ID of a user from their name.

        Args:
            user: Name of the user.
        """
        return self._invoke("get_user_id", user=user)

    def message_login(self, user_id: str) -> dict:
        """Log in to the messaging application.

        Args:
            user_id: User ID of the user logging in (for example "USR001").
        """
        return self._invoke("message_login", user_id=user_id)

    def send_message(self, receiver_id: str, message: str) -> dict:
        """Send a message to a user (needs a login).

        Args:
            receiver_id: User ID of the receiver.
            message: Text of the message.
        """
        return self._invoke("send_message", receiver_id=receiver_id, message=message)

    def delete_message(self, receiver_id: str) -> dict:
        """Delete the latest message sent to a receiver (needs a login).

        Args:
            receiver_id: User ID of the receiver of the message to delete.
        """
        return self._invoke("delete_message", receiver_id=receiver_id)

    def view_messages_sent(self) -> dict:
        """Show all messages sent so far, grouped by receiver ID (needs a login)."""
        return self._invoke("view_messages_sent")

    def add_contact(self, user_name: str) -> dict:
        """Add a new contact to the workspace; returns the user ID it gets.

        Args:
            user_name: Name of the new contact.
        """
        return self._invoke("add_contact", user_name=user_name)

    def search_messages(self, keyword: str) -> dict:
        """Find the messages that contain a keyword, case-insensitively (needs a login).

        Args:
            keyword: The keyword to look for.
        """
        return self._invoke("search_messages", keyword=keyword)

    def get_message_stats(self) -> dict:
        """Count the messages on record and the distinct contacts they went to (needs a login)."""
        return self._invoke("get_message_stats")


@register("bfcl_vehicle")
class BfclVehicleEnv(BfclEnvironment):
    """BFCL's VehicleControlAPI: a car whose engine only starts with all doors locked and the brake pedal floored."""

    bfcl_module = "vehicle_control"
    bfcl_class = "VehicleControlAPI"

    def lockDoors(self, unlock: bool, door: list[str]) -> dict:
        """Lock or unlock doors of the vehicle.

        Args:
            unlock: True to unlock the doors, False to lock them.
            door: The doors to change, any of "driver", "passenger", "rear_left", "rear_right".
        """
        return self._invoke("lockDoors", unlock=unlock, door=door)

    def pressBrakePedal(self, pedalPosition: float) -> dict:
        """Press the brake pedal; it stays pressed until released.

        Args:
            pedalPosition: Pedal position from 0 (not pressed) to 1 (fully pressed).
        """
        return self._invoke("pressBrakePedal", pedalPosition=pedalPosition)

    def releaseBrakePedal(self) -> dict:
        """Release the brake pedal."""
        return self._invoke("releaseBrakePedal")

    def startEngine(self, ignitionMode: str) -> dict:
        """Start or stop the engine (starting needs all doors locked and the brake pedal fully pressed).

        Args:
            ignitionMode: The ignition mode. (choices: ["START", "STOP"])
        """
        return self._invoke("startEngine", ignitionMode=ignitionMode)

    def fillFuelTank(self, fuelAmount: float) -> dict:
        """Add fuel to the tank, which holds at most 50 gallons.

        Args:
            fuelAmount: Gallons of fuel to add.
        """
        return self._invoke("fillFuelTank", fuelAmount=fuelAmount)

    def adjustClimateControl(
        self,
        temperature: float,
        unit: str = "celsius",
        fanSpeed: int = 50,
        mode: str = "auto",
    ) -> dict:
        """Set the climate control: temperature, fan speed and mode.

        Args:
            temperature: Target temperature, in the given unit.
            unit: Unit of the temperature. (choices: ["celsius", "fahrenheit"])
            fanSpeed: Fan speed from 0 to 100.
            mode: Climate mode. (choices: ["auto", "cool", "heat", "defrost"])
        """
        return self._invoke("adjustClimateControl", temperature=temperature, unit=unit, fanSpeed=fanSpeed, mode=mode)

    def setHeadlights(self, mode: str) -> dict:
        """Switch the headlights.

        Args:
            mode: Headlight mode. (choices: ["on", "off", "auto"])
        """
        return self._invoke("setHeadlights", mode=mode)

    def displayCarStatus(self, option: str) -> dict:
        """Show one part of the vehicle's status.

        Args:
            option: What to show. (choices: ["fuel", "battery", "doors", "climate", "headlights", "parkingBrake", "brakePedal", "engine"])
        """
        return self._invoke("displayCarStatus", option=option)

    def activateParkingBrake(self, mode: str) -> dict:
        """Engage or release the parking brake.

        Args:
            mode: What to do. (choices: ["engage", "release"])
        """
        return self._invoke("activateParkingBrake", mode=mode)

    def set_navigation(self, destination: str) -> dict:
        """Start navigating to a destination.

        Args:
            destination: The destination as "street, city, state".
        """
        return self._invoke("set_navigation", destination=destination)

    def check_tire_pressure(self) -> dict:
        """Read the pressure of each tire in psi and whether the average is healthy."""
        return self._invoke("check_tire_pressure")


# ---------------------------------------------------------------------------------------------------------------------
# Task generation
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """One drawn task before execution: state, goal, the calls that achieve it and how to read off the answer."""

    scenario: dict[str, Any]
    question: str
    calls: list[tuple[str, dict[str, Any]]]
    #: Reads the reference answer from the calls' parsed results (None: the goal asks for no information).
    answer: Callable[[list[Any]], str] | None = None


@dataclass(frozen=True)
class Template:
    """A named way to draw a :class:`Plan` from a random generator."""

    name: str
    draw: Callable[[random.Random], Plan]


def _number(value: float) -> str:
    """A quantity as a person would say it (``37`` rather than ``37.0``)."""
    return f"{value:g}"


# --- TicketAPI --------------------------------------------------------------------------------------------------------

TICKET_USERS = (
    "mara.lopez", "jin.chen", "arjun.patel", "hana.kim", "sofia.dubois",
    "taro.nakamura", "ella.brown", "chidi.okafor", "luca.rossi", "vikram.singh",
)  # fmt: skip
TICKET_ISSUES = (
    ("VPN drops every hour", "The VPN client disconnects about once an hour."),
    ("Printer on floor 3 jams", "The shared printer jams on double-sided jobs."),
    ("Laptop battery swelling", "The laptop lid no longer closes flat."),
    ("Cannot open payroll portal", "The payroll site shows a certificate warning."),
    ("Monitor flickers", "The second monitor flickers when the dock is used."),
    ("Shared drive is read-only", "Saving to the team share fails with access denied."),
    ("Calendar invites missing", "Invites from outside the company never arrive."),
    ("Badge reader rejects card", "The east entrance reader blinks red for my badge."),
    ("Slow Wi-Fi in room B12", "Downloads in meeting room B12 crawl below 1 Mbps."),
    ("Keyboard keys sticking", "The E and R keys stick after a coffee spill."),
    ("Password reset loop", "Resetting the password sends me back to the same form."),
    ("Projector has no signal", "The boardroom projector shows no input over HDMI."),
    ("Phone voicemail full", "Callers hear that my voicemail box is full."),
    ("License expired for CAD tool", "The CAD suite says its license ended yesterday."),
    ("Backup job failing", "The nightly backup of the sales database reports errors."),
    ("Email signature wrong", "My signature still shows last year's job title."),
)
TICKET_RESOLUTIONS = (
    "Replaced the faulty network cable",
    "Reinstalled the client and cleared its cache",
    "Swapped the device for a spare unit",
    "Renewed the expired certificate",
    "Updated the driver to the latest version",
    "Granted the missing folder permission",
    "Reset the account and confirmed the login works",
    "Restarted the service and verified the nightly run",
)
PASSWORD_WORDS = ("maple", "harbor", "quartz", "falcon", "cobalt", "meadow", "ember", "glacier")
OPENISH = ("Open", "In Progress")
TICKET_STATUSES = ("Open", "In Progress", "Resolved", "Closed")


def _ticket_scenario(rng: random.Random, owner: str, logged_in: bool, count: int) -> dict[str, Any]:
    """A queue of ``count`` tickets (the first always ``owner``'s) starting at a random ID."""
    first_id = rng.randint(1, 80)
    others = rng.sample([user for user in TICKET_USERS if user != owner], 2)
    tickets = []
    for offset, (title, description) in enumerate(rng.sample(TICKET_ISSUES, count)):
        creator = owner if offset == 0 or rng.random() < 0.5 else rng.choice(others)
        tickets.append(
            {
                "id": first_id + offset,
                "title": title,
                "description": description,
                "status": rng.choice(TICKET_STATUSES),
                "priority": rng.randint(1, 5),
                "created_by": creator,
            }
        )
    return {"ticket_queue": tickets, "ticket_counter": first_id + count, "current_user": owner if logged_in else None}


def _ticket_login_create(rng: random.Random) -> Plan:
    owner = rng.choice(TICKET_USERS)
    scenario = _ticket_scenario(rng, owner, logged_in=False, count=rng.randint(2, 5))
    taken = {ticket["title"] for ticket in scenario["ticket_queue"]}
    title, description = rng.choice([issue for issue in TICKET_ISSUES if issue[0] not in taken])
    description = description.rstrip(".")  # quoted inside a sentence
    password = f"{rng.choice(PASSWORD_WORDS)}{rng.randint(100, 999)}!"
    priority = rng.randint(1, 5)
    log_out = rng.random() < 0.5
    question = rng.choice(
        (
            "Sign in to the help desk as {user} (password: {pw}) and file a priority {p} ticket called '{t}' "
            'with the description "{d}".',
            "Please log me in as {user}, password {pw}, then open a new ticket titled '{t}' at priority {p}. "
            'Describe it as "{d}".',
        )
    ).format(user=owner, pw=password, p=priority, t=title, d=description)
    calls = [
        ("ticket_login", {"username": owner, "password": password}),
        ("create_ticket", {"title": title, "description": description, "priority": priority}),
    ]
    if log_out:
        question += " Sign me out afterwards."
        calls.append(("logout", {}))
    return Plan(scenario, question, calls)


def _ticket_resolve_mine(rng: random.Random) -> Plan:
    owner = rng.choice(TICKET_USERS)
    scenario = _ticket_scenario(rng, owner, logged_in=True, count=rng.randint(3, 6))
    target = scenario["ticket_queue"][0]
    target["status"] = rng.choice(OPENISH)
    resolution = rng.choice(TICKET_RESOLUTIONS)
    question = rng.choice(
        (
            "The problem in my ticket '{t}' has been fixed. Mark that ticket resolved with the note: {r}.",
            "Find the ticket I raised about '{t}' and resolve it; record \"{r}\" as the resolution.",
        )
    ).format(t=target["title"], r=resolution)
    calls = [
        ("get_user_tickets", {}),
        ("resolve_ticket", {"ticket_id": target["id"], "resolution": resolution}),
    ]
    return Plan(scenario, question, calls)


def _ticket_inspect_close(rng: random.Random) -> Plan:
    owner = rng.choice(TICKET_USERS)
    scenario = _ticket_scenario(rng, owner, logged_in=rng.random() < 0.5, count=rng.randint(3, 6))
    target = rng.choice(scenario["ticket_queue"])
    target["status"] = rng.choice(OPENISH)
    question = rng.choice(
        (
            "What priority is ticket #{id} set to? Tell me, and then close that ticket.",
            "Check ticket {id}: report its priority level to me, then close it.",
        )
    ).format(id=target["id"])
    calls = [("get_ticket", {"ticket_id": target["id"]}), ("close_ticket", {"ticket_id": target["id"]})]
    return Plan(scenario, question, calls, answer=lambda results: str(results[0]["priority"]))


def _ticket_escalate(rng: random.Random) -> Plan:
    owner = rng.choice(TICKET_USERS)
    scenario = _ticket_scenario(rng, owner, logged_in=True, count=rng.randint(3, 6))
    target = rng.choice(scenario["ticket_queue"])
    target["status"] = "Open"
    priority = rng.choice([p for p in (4, 5) if p != target["priority"]])
    question = rng.choice(
        (
            "Ticket {id} needs attention: bump its priority to {p}, move it to 'In Progress', and tell me which user "
            "opened it.",
            "Escalate ticket number {id} to priority {p} with status 'In Progress'. Who created that ticket?",
        )
    ).format(id=target["id"], p=priority)
    calls = [
        ("get_ticket", {"ticket_id": target["id"]}),
        ("edit_ticket", {"ticket_id": target["id"], "status": "In Progress", "priority": priority}),
    ]
    return Plan(scenario, question, calls, answer=lambda results: str(results[0]["created_by"]))


# --- MessageAPI -------------------------------------------------------------------------------------------------------

PEOPLE = (
    "Amara", "Bruno", "Chloe", "Dmitri", "Esme", "Farid", "Greta", "Hiro",
    "Ines", "Jonah", "Keiko", "Lars", "Mina", "Nikhil", "Olga", "Pavel",
)  # fmt: skip
MESSAGES = (
    "The build is green again.",
    "Can you review the slides before noon?",
    "Lunch moved to 1 pm today.",
    "Please sign the expense report.",
    "The client approved the draft.",
    "Server maintenance starts at 6 pm.",
    "Your parcel arrived at the front desk.",
    "Remember the quarterly survey.",
    "The meeting room is booked for Friday.",
    "Thanks for fixing the printer.",
    "The invoice draft needs your numbers.",
    "Training slots open next week.",
    "The report draft is in the shared folder.",
    "Parking passes expire on Monday.",
)
NEW_MESSAGES = (
    "Welcome aboard, glad to have you.",
    "Could we move our call to Thursday?",
    "The prototype ships tomorrow morning.",
    "Please confirm the venue for the offsite.",
    "I left the contract on your desk.",
    "Your access badge is ready for pickup.",
    "Budget figures are due by Wednesday.",
    "Great job on the demo today.",
)


def _message_scenario(rng: random.Random, logged_in: bool) -> tuple[dict[str, Any], list[str]]:
    """A workspace of 4-6 users (names in ID order) and 2-5 messages; the first name is the acting user."""
    names = rng.sample(PEOPLE, rng.randint(4, 6))
    user_map = {name: f"USR{index + 1:03d}" for index, name in enumerate(names)}
    receivers = [user_map[name] for name in names[1:]]
    inbox = [{rng.choice(receivers): text} for text in rng.sample(MESSAGES, rng.randint(2, 5))]
    scenario = {
        "random_seed": rng.randint(1, 999_999),
        "generated_ids": [],
        "user_count": len(names),
        "user_map": user_map,
        "inbox": inbox,
        "message_count": len(inbox),
        "current_user": user_map[names[0]] if logged_in else None,
    }
    return scenario, names


def _message_login_send(rng: random.Random) -> Plan:
    scenario, names = _message_scenario(rng, logged_in=False)
    me, other = names[0], rng.choice(names[1:])
    me_id, other_id = scenario["user_map"][me], scenario["user_map"][other]
    text = rng.choice(NEW_MESSAGES)
    question = rng.choice(
        (
            "This is {me}, my user ID is {me_id}. Log me in to the messenger and send {other} this note: '{m}'",
            'Log in with my ID {me_id} (I\'m {me}) and message {other}: "{m}"',
        )
    ).format(me=me, me_id=me_id, other=other, m=text)
    calls = [
        ("message_login", {"user_id": me_id}),
        ("get_user_id", {"user": other}),
        ("send_message", {"receiver_id": other_id, "message": text}),
    ]
    return Plan(scenario, question, calls)


def _message_add_send(rng: random.Random) -> Plan:
    scenario, names = _message_scenario(rng, logged_in=True)
    newcomer = rng.choice([name for name in PEOPLE if name not in names])
    new_id = f"USR{scenario['user_count'] + 1:03d}"
    text = rng.choice(NEW_MESSAGES)
    question = rng.choice(
        (
            "Add {n} to my contacts and then send them the message '{m}'",
            '{n} just joined the team. Save them as a contact and write to them: "{m}"',
        )
    ).format(n=newcomer, m=text)
    calls = [("add_contact", {"user_name": newcomer}), ("send_message", {"receiver_id": new_id, "message": text})]
    return Plan(scenario, question, calls)


def _message_search_delete(rng: random.Random) -> Plan:
    scenario, names = _message_scenario(rng, logged_in=True)
    id_to_name = {user_id: name for name, user_id in scenario["user_map"].items()}
    (other_id, _), *_ = rng.choice(scenario["inbox"]).items()
    words = sorted({word.strip(".,?").lower() for m in scenario["inbox"] for word in next(iter(m.values())).split()})
    keyword = rng.choice([word for word in words if len(word) >= 5] or words)
    question = rng.choice(
        (
            "How many messages mention '{k}'? After you tell me, delete the most recent message sent to {o}.",
            'Count the messages that contain the word "{k}", then remove the latest message that went to {o}.',
        )
    ).format(k=keyword, o=id_to_name[other_id])
    calls = [
        ("search_messages", {"keyword": keyword}),
        ("get_user_id", {"user": id_to_name[other_id]}),
        ("delete_message", {"receiver_id": other_id}),
    ]
    return Plan(scenario, question, calls, answer=lambda results: str(len(results[0]["results"])))


def _message_send_stats(rng: random.Random) -> Plan:
    scenario, names = _message_scenario(rng, logged_in=True)
    other = rng.choice(names[1:])
    text = rng.choice(NEW_MESSAGES)
    question = rng.choice(
        (
            "Send {o} the message '{m}' and then tell me how many messages are on record in total.",
            'Please text {o}: "{m}" and afterwards tell me how many messages the messaging log holds altogether.',
        )
    ).format(o=other, m=text)
    calls = [
        ("get_user_id", {"user": other}),
        ("send_message", {"receiver_id": scenario["user_map"][other], "message": text}),
        ("get_message_stats", {}),
    ]
    return Plan(scenario, question, calls, answer=lambda results: str(results[2]["stats"]["received_count"]))


# --- VehicleControlAPI ------------------------------------------------------------------------------------------------

DOORS = ("driver", "passenger", "rear_left", "rear_right")
TIRES = {
    "frontLeftTirePressure": "front left",
    "frontRightTirePressure": "front right",
    "rearLeftTirePressure": "rear left",
    "rearRightTirePressure": "rear right",
}
ADDRESSES = (
    "14 Harbor Lane, Portsmouth, NH",
    "220 Birch Street, Boulder, CO",
    "9 Quarry Road, Burlington, VT",
    "75 Lantern Court, Savannah, GA",
    "318 Orchard Avenue, Fresno, CA",
    "41 Mill Pond Drive, Madison, WI",
    "1200 Cedar Parkway, Tulsa, OK",
    "63 Beacon Hill Road, Providence, RI",
)
CLIMATE_MODES = ("auto", "cool", "heat", "defrost")


def _vehicle_scenario(rng: random.Random) -> dict[str, Any]:
    """A parked car (engine stopped, pedal released) with random doors, fuel, climate, lights and tyres."""
    scenario: dict[str, Any] = {
        "random_seed": rng.randint(1, 999_999),
        "fuelLevel": float(rng.randint(5, 45)),
        "batteryVoltage": round(rng.uniform(12.0, 12.8), 1),
        "engineState": "stopped",
        "doorStatus": {door: rng.choice(("locked", "unlocked")) for door in DOORS},
        "acTemperature": float(rng.randint(17, 27)),
        "fanSpeed": rng.randrange(0, 101, 10),
        "acMode": rng.choice(CLIMATE_MODES),
        "humidityLevel": float(rng.randint(30, 70)),
        "headLightStatus": rng.choice(("on", "off")),
        "parkingBrakeStatus": rng.choice(("engaged", "released")),
        "brakePedalStatus": "released",
        "brakePedalForce": 0.0,
        "destination": "None",
    }
    for key in TIRES:
        scenario[key] = float(rng.randint(26, 38))
    return scenario


def _unlocked(scenario: dict[str, Any]) -> list[str]:
    return [door for door in DOORS if scenario["doorStatus"][door] == "unlocked"]


def _vehicle_start(rng: random.Random) -> Plan:
    scenario = _vehicle_scenario(rng)
    release = scenario["parkingBrakeStatus"] == "engaged" and rng.random() < 0.6
    question = rng.choice(
        (
            "Get the engine running for me",
            "I'm in the driver's seat: please start the car",
            "Start the engine so we can get going",
            "Fire up the car's engine for me",
        )
    )
    question += ", and release the parking brake too." if release else "."
    calls: list[tuple[str, dict[str, Any]]] = []
    if _unlocked(scenario):
        calls.append(("lockDoors", {"unlock": False, "door": _unlocked(scenario)}))
    calls += [("pressBrakePedal", {"pedalPosition": 1.0}), ("startEngine", {"ignitionMode": "START"})]
    if release:
        calls.append(("activateParkingBrake", {"mode": "release"}))
    return Plan(scenario, question, calls)


def _vehicle_fill_tank(rng: random.Random) -> Plan:
    scenario = _vehicle_scenario(rng)
    question = rng.choice(
        (
            "Top the fuel tank up to its full 50 gallons and tell me how many gallons you put in.",
            "Fill the tank completely (it holds 50 gallons). How much fuel did that take?",
            "Please fill up the fuel tank to the 50-gallon maximum and let me know how many gallons were added.",
        )
    )
    missing = 50.0 - scenario["fuelLevel"]
    calls = [("displayCarStatus", {"option": "fuel"}), ("fillFuelTank", {"fuelAmount": missing})]
    return Plan(scenario, question, calls, answer=lambda results: _number(50.0 - results[0]["fuelLevel"]))


def _vehicle_climate_lights(rng: random.Random) -> Plan:
    scenario = _vehicle_scenario(rng)
    unit = rng.choice(("celsius", "fahrenheit"))
    temperature = float(rng.randint(64, 78) if unit == "fahrenheit" else rng.randint(18, 26))
    fan = rng.randrange(10, 101, 10)
    mode = rng.choice(CLIMATE_MODES)
    lights = "off" if scenario["headLightStatus"] == "on" else "on"
    question = rng.choice(
        (
            "Set the cabin to {t} degrees {u} with the fan at {f} in {m} mode, and switch the headlights {l}.",
            "Climate please: {t} °{U}, fan speed {f}, mode {m}. Also turn the headlights {l}.",
        )
    ).format(t=_number(temperature), u=unit.capitalize(), U=unit[0].upper(), f=fan, m=mode, l=lights)
    calls = [
        ("adjustClimateControl", {"temperature": temperature, "unit": unit, "fanSpeed": fan, "mode": mode}),
        ("setHeadlights", {"mode": lights}),
    ]
    return Plan(scenario, question, calls)


def _vehicle_navigate_lock(rng: random.Random) -> Plan:
    scenario = _vehicle_scenario(rng)
    if not _unlocked(scenario):
        scenario["doorStatus"][rng.choice(DOORS)] = "unlocked"
    address = rng.choice(ADDRESSES)
    question = rng.choice(
        (
            "Navigate to {a} and make sure every door is locked.",
            "Lock up all the doors and set the GPS for {a}.",
        )
    ).format(a=address)
    calls = [
        ("set_navigation", {"destination": address}),
        ("lockDoors", {"unlock": False, "door": _unlocked(scenario)}),
    ]
    return Plan(scenario, question, calls)


def _vehicle_tire_brake(rng: random.Random) -> Plan:
    scenario = _vehicle_scenario(rng)
    pressures = rng.sample(range(26, 39), len(TIRES))  # distinct, so one tire is the lowest
    for key, value in zip(TIRES, pressures, strict=True):
        scenario[key] = float(value)
    scenario["parkingBrakeStatus"] = "released"
    question = rng.choice(
        (
            "Which tire has the lowest pressure? Check them, tell me, and engage the parking brake.",
            "Engage the parking brake, then read the tire pressures and tell me which one is lowest.",
            "Put the parking brake on, and find out which of the four tires is at the lowest pressure.",
        )
    )
    calls = [("check_tire_pressure", {}), ("activateParkingBrake", {"mode": "engage"})]
    return Plan(scenario, question, calls, answer=lambda results: TIRES[min(TIRES, key=lambda k: results[0][k])])


SYSTEM_PROMPTS = {
    "bfcl_ticket": "You are a help-desk assistant with tools for the company's support-ticket system. Use the tools "
    "to carry out the user's request. When the request asks for information, state it in your final reply.",
    "bfcl_message": "You are an assistant with tools for the workplace messaging app. Use the tools to carry out the "
    "user's request. When the request asks for information, state it in your final reply.",
    "bfcl_vehicle": "You are the car's assistant, with tools that control the vehicle. Use the tools to carry out the "
    "user's request. When the request asks for information, state it in your final reply.",
}

#: Registry name -> its task templates (drawn in turn, so every template is equally frequent).
TEMPLATES: dict[str, tuple[Template, ...]] = {
    "bfcl_ticket": (
        Template("login_create", _ticket_login_create),
        Template("resolve_mine", _ticket_resolve_mine),
        Template("inspect_close", _ticket_inspect_close),
        Template("escalate", _ticket_escalate),
    ),
    "bfcl_message": (
        Template("login_send", _message_login_send),
        Template("add_send", _message_add_send),
        Template("search_delete", _message_search_delete),
        Template("send_stats", _message_send_stats),
    ),
    "bfcl_vehicle": (
        Template("start_engine", _vehicle_start),
        Template("fill_tank", _vehicle_fill_tank),
        Template("climate_lights", _vehicle_climate_lights),
        Template("navigate_lock", _vehicle_navigate_lock),
        Template("tire_brake", _vehicle_tire_brake),
    ),
}
BFCL_ENVS = tuple(TEMPLATES)


def execute_plan(env_name: str, template: str, plan: Plan) -> dict[str, Any]:
    """The task of the protocol: the plan's calls run on the environment class itself, so references are BFCL's."""
    bfcl_class = ENVIRONMENTS[env_name].bfcl_class  # type: ignore[attr-defined]
    task: dict[str, Any] = {
        "env": env_name,
        "template": template,
        "initial_state": {bfcl_class: plan.scenario},
        "reference_calls": [{"name": name, "arguments": arguments} for name, arguments in plan.calls],
        "reference_state": None,
        "reference_answer": None,
    }
    env = ENVIRONMENTS[env_name]()
    env.reset(task=json.dumps(task))
    results = []
    for name, arguments in plan.calls:
        text = getattr(env, name)(**copy.deepcopy(arguments))
        if env.calls[-1]["error"] is not None:
            raise RuntimeError(
                f"{env_name}/{template}: reference call {name}({arguments}) failed: {env.calls[-1]['error']}"
            )
        results.append(json.loads(text))
    task["reference_state"] = env.end_state()
    task["reference_answer"] = plan.answer(results) if plan.answer is not None else None
    return task


def generate_tasks(env_name: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows of the protocol for one environment, the same bytes for the same ``(env_name, n, seed)``.

    Templates are drawn in turn; every random choice comes from one :class:`random.Random` seeded with a string
    (stable across processes), so a longer run extends a shorter one with the same seed.
    """
    if env_name not in TEMPLATES:
        raise KeyError(f"unknown BFCL environment {env_name!r}; valid: {list(TEMPLATES)}")
    rng = random.Random(f"toolrl-bfcl:{env_name}:{seed}")
    templates = TEMPLATES[env_name]
    rows = []
    for index in range(n):
        template = templates[index % len(templates)]
        plan = template.draw(rng)
        task = execute_plan(env_name, template.name, plan)
        rows.append(
            {
                "prompt": [
                    {"role": "system", "content": SYSTEM_PROMPTS[env_name]},
                    {"role": "user", "content": plan.question},
                ],
                "task": json.dumps(task, sort_keys=True),
                "env_name": env_name,
            }
        )
    return rows


def generate_mixed(n: int, seed: int = 0, envs: Sequence[str] = BFCL_ENVS) -> list[dict[str, Any]]:
    """``n`` rows spread as evenly as possible over ``envs`` (interleaved in turn)."""
    per_env = {
        name: generate_tasks(name, n // len(envs) + (index < n % len(envs)), seed) for index, name in enumerate(envs)
    }
    rows = []
    for position in range(max(len(r) for r in per_env.values()) if per_env else 0):
        rows += [env_rows[position] for env_rows in per_env.values() if position < len(env_rows)]
    return rows


#: Seed offset of the evaluation split, so its tasks are drawn from a stream the training split never uses.
TEST_SEED_OFFSET = 1_000_003


@functools.lru_cache(maxsize=4)
def _mixed_json(n: int, seed: int) -> tuple[str, ...]:
    """:func:`generate_mixed` as JSON lines, cached: the test split needs the training tasks to exclude them."""
    return tuple(json.dumps(row, sort_keys=True) for row in generate_mixed(n, seed))


def build_task_source(split: str, config: Any) -> list[dict[str, Any]]:
    """Rows for ``task_source: bfcl_stateful``: all wrapped APIs mixed, checked against BFCL's questions.

    Sizes and seed come from the multi-turn data options (``world_train_size``/``world_test_size``,
    ``dataset_seed``). The test split draws from another seed stream and drops any task identical to a training
    one. Rows whose question equals or nearly equals a BFCL multi-turn question make it fail (never train on them).
    """
    from toolrl_trl.envs import decontamination

    seed = int(getattr(config, "dataset_seed", 0))
    train = _mixed_json(int(config.world_train_size), seed)
    if split == "train":
        lines = list(train)
    else:
        seen = {json.loads(line)["task"] for line in train}
        lines = [
            line
            for line in _mixed_json(int(config.world_test_size), seed + TEST_SEED_OFFSET)
            if json.loads(line)["task"] not in seen
        ]
    rows = [json.loads(line) for line in lines]
    decontamination.assert_clean(rows)
    logger.info("%s: %d %s rows over %s", TASK_SOURCE, len(rows), split, ", ".join(BFCL_ENVS))
    return rows


register_task_source(TASK_SOURCE, build_task_source)
