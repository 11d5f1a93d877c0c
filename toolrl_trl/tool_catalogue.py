"""The synthetic generator's tool catalogue, as data: one ``tool(...)`` record per tool, in :data:`TOOLS`.

This is the one place to add or change a tool; :mod:`toolrl_trl.synthetic` has no per-tool code. A record gives:

- ``name``, ``domain``: tools of the request's domain are the tempting distractors of a prompt, and a request
  for an unavailable tool gets a prompt without any tool of its domain;
- ``description`` and ``params``: the schema the system prompt lists. Parameters are built with
  :func:`required_param` (always sent), :func:`optional_param` (sent only when the request mentions a
  non-default value) or :func:`optional_flag` (an optional boolean, mentioned only to flip its default);
- ``requests``: what a user says, with one ``{slot}`` per required parameter and no others;
- ``action`` ("check the weather in {city}") and ``topic`` ("the weather"): the words of thoughts,
  acknowledgements, vague requests, capability lists and refusals;
- ``results`` and ``summary``: the fields of the tool's ``<obs>`` with the values each may take, and how an
  answer reports them (``{parameter}`` and ``{result field}`` slots).

``tests/test_synthetic.py`` checks every record (slots match parameters, values match the declared types).
Order is data: the generator draws from the tools and from each value pool in the order written here, so
adding, removing or reordering a tool or a value changes the generated tasks for every seed. The digests
pinned in ``tests/test_synthetic.py`` then fail on purpose; update them with the change, knowing that runs
on the old data are no longer comparable (the demo's tokenizer, which learns every parameter value as a
word, changes too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolrl_trl import grammar

# ---------------------------------------------------------------------------------------------------------------------
# Record types
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One typed parameter: its schema in the system prompt and how requests mention its values."""

    name: str
    type: str  # "str", "int", "float", "bool", "List[str]" or "List[int]"
    description: str
    pool: tuple[Any, ...]  # candidate values (list types: candidate items)
    required: bool = True
    default: Any = None
    enum: bool = False  # the pool is the closed set of allowed values, listed in the schema
    mention: str = ""  # optional parameters: a sentence stating the value, with a ``{value}`` slot
    label: str = ""  # the noun used in thoughts and questions; defaults to the name
    distinct_from: str = ""  # another parameter that must get a different value

    @property
    def noun(self) -> str:
        return self.label or self.name.replace("_", " ")

    def schema(self) -> dict[str, Any]:
        """The parameter as the system prompt lists it (the xLAM-style layout of the paper's data)."""
        entry: dict[str, Any] = {
            "description": self.description,
            "type": self.type if self.required else f"{self.type}, optional",
        }
        if self.enum:
            entry["enum"] = list(self.pool)
        if not self.required:
            entry["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        return entry


@dataclass(frozen=True)
class SyntheticTool:
    """A tool of the catalogue: its schema plus the language used to request it and report its result."""

    name: str
    domain: str
    description: str
    params: tuple[ParamSpec, ...]
    requests: tuple[str, ...]  # user requests with ``{param}`` slots for the required parameters
    action: str  # "check the weather in {city}": used in thoughts and acknowledgements
    topic: str  # "the weather": used for vague requests, capability lists and refusals
    results: tuple[tuple[str, tuple[Any, ...]], ...]  # result fields of the tool's ``<obs>`` and their values
    summary: str  # how an answer reports a result, with ``{param}`` and ``{result field}`` slots

    def spec(self) -> grammar.ToolSpec:
        return grammar.ToolSpec(self.name, self.description, {p.name: p.schema() for p in self.params})

    @property
    def required(self) -> tuple[ParamSpec, ...]:
        return tuple(p for p in self.params if p.required)

    @property
    def optional(self) -> tuple[ParamSpec, ...]:
        return tuple(p for p in self.params if not p.required)


def required_param(
    name: str,
    type_: str,
    description: str,
    pool: Sequence[Any],
    *,
    label: str = "",
    enum: bool = False,
    distinct_from: str = "",
) -> ParamSpec:
    """A parameter every call sends, with a value drawn from ``pool`` and a ``{name}`` slot in each request."""
    return ParamSpec(name, type_, description, tuple(pool), label=label, enum=enum, distinct_from=distinct_from)


def optional_param(
    name: str, type_: str, description: str, pool: Sequence[Any], *, default: Any, mention: str, enum: bool = False
) -> ParamSpec:
    """A parameter with a default: a request mentions a non-default value with ``mention``, and only then is it sent."""
    return ParamSpec(
        name, type_, description, tuple(pool), required=False, default=default, enum=enum, mention=mention
    )


def optional_flag(name: str, description: str, *, default: bool, mention: str) -> ParamSpec:
    """An optional boolean; a request mentions it (with ``mention``) only to ask for the non-default value."""
    return optional_param(name, "bool", description, (True, False), default=default, mention=mention)


def tool(
    *,
    name: str,
    domain: str,
    description: str,
    params: Sequence[ParamSpec],
    requests: Sequence[str],
    action: str,
    topic: str,
    results: Mapping[str, Sequence[Any]],
    summary: str,
) -> SyntheticTool:
    """One catalogue record; ``results`` maps each result field to its possible values (a ``range`` will do)."""
    return SyntheticTool(
        name=name,
        domain=domain,
        description=description,
        params=tuple(params),
        requests=tuple(requests),
        action=action,
        topic=topic,
        results=tuple((field, tuple(values)) for field, values in results.items()),
        summary=summary,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Value pools shared by several tools
# ---------------------------------------------------------------------------------------------------------------------

CITIES = (
    "Paris",
    "London",
    "Tokyo",
    "Berlin",
    "Madrid",
    "Rome",
    "Sydney",
    "Toronto",
    "Chicago",
    "Seoul",
    "Lima",
    "Cairo",
)
PEOPLE = ("Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry")
EMAILS = tuple(f"{name.lower()}@example.com" for name in PEOPLE)
DATES = ("2024-05-01", "2024-06-15", "2024-07-04", "2024-08-20", "2024-09-10", "2024-10-31", "2024-12-24")
TIMES = ("07:00", "08:30", "12:00", "15:45", "18:00", "21:30")
LANGUAGES = ("French", "Spanish", "German", "Japanese", "Italian", "Korean")
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD")
COUNTRIES = ("France", "Japan", "Brazil", "Canada", "Kenya", "India", "Germany", "Mexico")
PLACES = ("the airport", "the central station", "the city hall", "the museum", "the stadium", "the old town")
PHRASES = ("good morning", "where is the train station", "thank you very much", "see you tomorrow", "the bill please")
FOREIGN = ("bonjour tout le monde", "hola amigos", "guten morgen", "buongiorno a tutti", "obrigado pela ajuda")
REVIEWS = ("the food was great", "the service was slow", "the room was clean and quiet", "the movie was boring")
WORDS = ("serendipity", "ephemeral", "resilient", "candid", "meticulous", "racecar", "level", "kayak")
PRODUCTS = ("headphones", "running shoes", "coffee maker", "backpack", "desk lamp", "phone case")
INGREDIENTS = ("chicken", "tofu", "mushrooms", "rice", "lentils", "salmon", "spinach")
FOODS = ("apple", "banana", "oatmeal", "almonds", "egg", "avocado", "yogurt")
SONGS = ("Blue Sky", "Night Drive", "Golden Hour", "Summer Rain", "Paper Moon")
ARTISTS = ("The Lights", "Nova", "River Band", "Luna Park")
MOVIES = ("Star Road", "The Last Garden", "Ocean Eyes", "Iron Hill", "Silent Harbor")
TEAMS = ("Lions", "Eagles", "Sharks", "Tigers", "Wolves", "Falcons")
STOCKS = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA")
COINS = ("bitcoin", "ethereum", "solana", "cardano")
ORDERS = ("A1023", "B2291", "C3307", "D4410", "E5518")
FLIGHTS = ("AF12", "BA208", "LH455", "UA901", "JL44")
ROOMS = ("living room", "bedroom", "kitchen", "office")
TOPICS = ("technology", "sports", "business", "science", "health")
JOBS = ("data analyst", "nurse", "teacher", "web developer", "chef")
AUTHORS = ("Jane Austen", "Mark Twain", "Agatha Christie", "Leo Tolstoy")
URLS = (
    "https://example.com/blog/summer-sale",
    "https://example.com/docs/getting-started",
    "https://example.com/news/42",
)
SUBJECTS = ("Meeting notes", "Project update", "Lunch on Friday", "Travel plans")
TITLES = ("Team meeting", "Dentist", "Yoga class", "Project review", "Birthday dinner")
LENGTH_UNITS = ("kilometers", "miles", "meters", "feet")
CONDITIONS = ("sunny", "cloudy", "rainy", "windy", "snowy")
STATUSES = ("on time", "delayed", "boarding", "landed")
HOURS = tuple(f"{h:02d}:00" for h in range(6, 23))

#: Parameters several tools share.
CITY_PARAM = required_param("city", "str", "Name of the city.", CITIES)
DATE_PARAM = required_param("date", "str", "The date in YYYY-MM-DD format.", DATES)

# ---------------------------------------------------------------------------------------------------------------------
# The tools (order matters: see the module docstring)
# ---------------------------------------------------------------------------------------------------------------------

TOOLS: tuple[SyntheticTool, ...] = (
    # weather
    tool(
        name="get_current_weather",
        domain="weather",
        description="Get the current weather for a city.",
        params=[
            CITY_PARAM,
            optional_param(
                "units",
                "str",
                "Temperature units.",
                ("celsius", "fahrenheit"),
                default="celsius",
                mention="Use {value}.",
                enum=True,
            ),
        ],
        requests=[
            "What is the weather in {city} right now?",
            "How is the weather in {city}?",
            "Check the weather in {city}.",
        ],
        action="check the weather in {city}",
        topic="the weather",
        results={"temperature": range(-5, 36), "condition": CONDITIONS},
        summary="It is {temperature} degrees and {condition} in {city}.",
    ),
    tool(
        name="get_weather_forecast",
        domain="weather",
        description="Get the weather forecast for the next days in a city.",
        params=[
            CITY_PARAM,
            required_param("days", "int", "Number of days to forecast, from 2 to 7.", range(2, 8)),
        ],
        requests=[
            "What is the forecast for {city} for the next {days} days?",
            "Give me a {days} day forecast for {city}.",
        ],
        action="get a {days} day forecast for {city}",
        topic="weather forecasts",
        results={"condition": CONDITIONS, "high": range(5, 36), "low": range(-8, 20)},
        summary="The next {days} days in {city} look {condition}, with highs of {high} and lows of {low} degrees.",
    ),
    tool(
        name="get_air_quality",
        domain="weather",
        description="Get the air quality index of a city.",
        params=[CITY_PARAM],
        requests=[
            "How is the air quality in {city}?",
            "Is the air clean in {city} today?",
        ],
        action="check the air quality in {city}",
        topic="air quality",
        results={"aqi": range(10, 180), "level": ("good", "moderate", "unhealthy")},
        summary="The air quality index in {city} is {aqi}, which is {level}.",
    ),
    # travel
    tool(
        name="search_flights",
        domain="travel",
        description="Search for flights between two cities on a date.",
        params=[
            required_param("origin", "str", "City of departure.", CITIES, label="departure city"),
            required_param(
                "destination", "str", "City of arrival.", CITIES, label="destination", distinct_from="origin"
            ),
            DATE_PARAM,
            optional_param(
                "cabin",
                "str",
                "Cabin class.",
                ("economy", "business", "first"),
                default="economy",
                mention="I want {value} class.",
                enum=True,
            ),
            optional_param(
                "max_stops",
                "int",
                "Maximum number of stops.",
                (0, 1, 2),
                default=1,
                mention="No more than {value} stops, please.",
            ),
        ],
        requests=[
            "Find flights from {origin} to {destination} on {date}.",
            "I need a flight from {origin} to {destination} on {date}.",
        ],
        action="search flights from {origin} to {destination} on {date}",
        topic="flight search",
        results={"flights_found": range(1, 15), "lowest_price": range(80, 900)},
        summary="I found {flights_found} flights from {origin} to {destination}; the cheapest costs {lowest_price} dollars.",
    ),
    tool(
        name="get_flight_status",
        domain="travel",
        description="Get the live status of a flight by its number.",
        params=[
            required_param("flight_number", "str", "The flight number, like AF12.", FLIGHTS, label="flight number")
        ],
        requests=[
            "What is the status of flight {flight_number}?",
            "Is flight {flight_number} on time?",
        ],
        action="check the status of flight {flight_number}",
        topic="flight status",
        results={"status": STATUSES, "gate": ("A3", "B7", "C12", "D2")},
        summary="Flight {flight_number} is {status} at gate {gate}.",
    ),
    tool(
        name="search_hotels",
        domain="travel",
        description="Search for hotels in a city for a number of nights.",
        params=[
            CITY_PARAM,
            required_param("check_in", "str", "Check-in date in YYYY-MM-DD format.", DATES, label="check-in date"),
            required_param("nights", "int", "Number of nights.", range(2, 8)),
            optional_param(
                "max_price",
                "float",
                "Maximum price per night.",
                (80.0, 120.5, 150.0, 199.99),
                default=None,
                mention="Keep it under {value} per night.",
            ),
        ],
        requests=[
            "Find a hotel in {city} from {check_in} for {nights} nights.",
            "Look for a hotel in {city}: {nights} nights starting {check_in}.",
        ],
        action="search hotels in {city} for {nights} nights from {check_in}",
        topic="hotel search",
        results={"hotels_found": range(2, 30), "best_rating": (3.9, 4.2, 4.5, 4.8)},
        summary="There are {hotels_found} hotels in {city}; the best rated has {best_rating} stars.",
    ),
    tool(
        name="book_taxi",
        domain="travel",
        description="Book a taxi from a pickup place at a given time.",
        params=[
            required_param("pickup", "str", "Where the taxi picks you up.", PLACES, label="pickup place"),
            required_param("time", "str", "Pickup time in HH:MM.", TIMES),
        ],
        requests=[
            "Book a taxi from {pickup} at {time}.",
            "I need a cab at {pickup} at {time}.",
        ],
        action="book a taxi from {pickup} at {time}",
        topic="taxi booking",
        results={"driver": PEOPLE, "minutes_away": range(2, 20)},
        summary="Your taxi from {pickup} is booked; {driver} will pick you up at {time}.",
    ),
    tool(
        name="get_directions",
        domain="travel",
        description="Get directions between two places.",
        params=[
            required_param("origin", "str", "Starting place.", PLACES, label="starting place"),
            required_param("destination", "str", "Place to reach.", PLACES, distinct_from="origin"),
            optional_param(
                "mode",
                "str",
                "How to travel.",
                ("driving", "walking", "transit"),
                default="driving",
                mention="I will be {value}.",
                enum=True,
            ),
        ],
        requests=[
            "How do I get from {origin} to {destination}?",
            "Show me the way from {origin} to {destination}.",
        ],
        action="find the way from {origin} to {destination}",
        topic="directions",
        results={"minutes": range(5, 60), "distance_km": (1.2, 3.5, 5.0, 8.4, 12.0)},
        summary="It takes about {minutes} minutes to get from {origin} to {destination}.",
    ),
    # finance
    tool(
        name="get_stock_price",
        domain="finance",
        description="Get the latest stock price for a ticker symbol.",
        params=[required_param("symbol", "str", "The stock ticker symbol.", STOCKS, label="ticker symbol")],
        requests=[
            "What is the stock price of {symbol}?",
            "How much is {symbol} trading at?",
        ],
        action="look up the price of {symbol}",
        topic="stock prices",
        results={"price": (120.5, 215.75, 98.2, 430.1, 178.0), "change_percent": (-2.1, -0.4, 0.8, 1.6, 3.2)},
        summary="{symbol} trades at {price} dollars, a change of {change_percent} percent today.",
    ),
    tool(
        name="convert_currency",
        domain="finance",
        description="Convert an amount of money from one currency to another.",
        params=[
            required_param("amount", "float", "The amount to convert.", (10.0, 25.5, 100.0, 250.0, 1200.0)),
            required_param(
                "from_currency", "str", "Currency code to convert from.", CURRENCIES, label="source currency"
            ),
            required_param(
                "to_currency",
                "str",
                "Currency code to convert to.",
                CURRENCIES,
                label="target currency",
                distinct_from="from_currency",
            ),
        ],
        requests=[
            "Convert {amount} {from_currency} to {to_currency}.",
            "How much is {amount} {from_currency} in {to_currency}?",
        ],
        action="convert {amount} {from_currency} to {to_currency}",
        topic="currency conversion",
        results={"converted": (9.2, 23.4, 91.7, 268.3, 1105.9), "rate": (0.92, 1.08, 0.79, 1.27)},
        summary="{amount} {from_currency} is {converted} {to_currency}.",
    ),
    tool(
        name="calculate_loan_payment",
        domain="finance",
        description="Calculate the monthly payment of a loan.",
        params=[
            required_param("principal", "float", "The loan amount.", (5000.0, 12000.0, 25000.0, 180000.0)),
            required_param("annual_rate", "float", "Yearly interest rate in percent.", (3.5, 4.2, 5.0, 6.75)),
            required_param("years", "int", "Length of the loan in years.", (2, 5, 10, 15, 30)),
        ],
        requests=["What is the monthly payment on a {principal} loan at {annual_rate} percent for {years} years?"],
        action="compute the payment of a {principal} loan over {years} years",
        topic="loan payments",
        results={"monthly_payment": (145.3, 398.8, 512.4, 1020.6)},
        summary="The monthly payment would be {monthly_payment} dollars.",
    ),
    tool(
        name="get_crypto_price",
        domain="finance",
        description="Get the current price of a cryptocurrency.",
        params=[
            required_param("coin", "str", "Name of the coin.", COINS),
            optional_param(
                "currency",
                "str",
                "Currency for the price.",
                ("USD", "EUR", "GBP"),
                default="USD",
                mention="Give it in {value}.",
                enum=True,
            ),
        ],
        requests=[
            "What is the price of {coin} now?",
            "How much is one {coin} worth?",
        ],
        action="get the price of {coin}",
        topic="crypto prices",
        results={"price": (0.45, 152.3, 2890.5, 61200.0)},
        summary="One {coin} is worth {price} right now.",
    ),
    tool(
        name="calculate_tip",
        domain="finance",
        description="Calculate the tip for a bill and split it between people.",
        params=[
            required_param(
                "bill_amount", "float", "Total of the bill.", (24.5, 48.0, 86.4, 130.0), label="bill amount"
            ),
            optional_param(
                "tip_percent", "int", "Tip in percent.", (10, 15, 18, 20), default=15, mention="Tip {value} percent."
            ),
            optional_param(
                "split",
                "int",
                "Number of people sharing the bill.",
                (2, 3, 4),
                default=1,
                mention="Split it between {value} people.",
            ),
        ],
        requests=[
            "How much tip should I leave on a {bill_amount} bill?",
            "Work out the tip for a bill of {bill_amount}.",
        ],
        action="work out the tip on a {bill_amount} bill",
        topic="tips",
        results={"tip": (3.7, 7.2, 13.0, 19.5), "total": (28.2, 55.2, 99.4, 149.5)},
        summary="The tip is {tip}, for a total of {total}.",
    ),
    # math
    tool(
        name="is_prime",
        domain="math",
        description="Check whether a number is prime.",
        params=[required_param("number", "int", "The number to check.", (7, 15, 29, 51, 97, 121, 113))],
        requests=[
            "Is {number} a prime number?",
            "Check if {number} is prime.",
        ],
        action="check whether {number} is prime",
        topic="prime numbers",
        results={"is_prime": (True, False)},
        summary="The answer for {number} is {is_prime}.",
    ),
    tool(
        name="calculate_factorial",
        domain="math",
        description="Calculate the factorial of a non-negative integer.",
        params=[required_param("n", "int", "The non-negative integer.", range(3, 13), label="number")],
        requests=[
            "What is the factorial of {n}?",
            "Compute {n} factorial.",
        ],
        action="compute the factorial of {n}",
        topic="factorials",
        results={"result": (6, 24, 120, 720, 5040, 40320)},
        summary="The factorial of {n} is {result}.",
    ),
    tool(
        name="find_gcd",
        domain="math",
        description="Find the greatest common divisor of two integers.",
        params=[
            required_param("a", "int", "The first integer.", (12, 18, 24, 36, 48, 60), label="first number"),
            required_param("b", "int", "The second integer.", (8, 20, 30, 42, 54), label="second number"),
        ],
        requests=[
            "What is the greatest common divisor of {a} and {b}?",
            "Find the gcd of {a} and {b}.",
        ],
        action="find the gcd of {a} and {b}",
        topic="greatest common divisors",
        results={"gcd": (2, 4, 6, 12)},
        summary="The greatest common divisor of {a} and {b} is {gcd}.",
    ),
    tool(
        name="generate_random_number",
        domain="math",
        description="Generate a random integer between a minimum and a maximum.",
        params=[
            required_param("min_value", "int", "Smallest allowed value.", (1, 10, 50), label="minimum"),
            required_param("max_value", "int", "Largest allowed value.", (100, 500, 1000), label="maximum"),
        ],
        requests=[
            "Give me a random number between {min_value} and {max_value}.",
            "Pick a random integer from {min_value} to {max_value}.",
        ],
        action="pick a random number between {min_value} and {max_value}",
        topic="random numbers",
        results={"number": (42, 77, 318, 905)},
        summary="Your random number is {number}.",
    ),
    tool(
        name="calculate_average",
        domain="math",
        description="Calculate the average of a list of numbers.",
        params=[
            required_param(
                "numbers", "List[int]", "The numbers to average.", (3, 8, 12, 15, 21, 30, 42), label="numbers"
            )
        ],
        requests=[
            "What is the average of {numbers}?",
            "Calculate the mean of {numbers}.",
        ],
        action="average {numbers}",
        topic="averages",
        results={"average": (8.5, 12.0, 17.3, 24.6)},
        summary="The average is {average}.",
    ),
    tool(
        name="convert_length",
        domain="math",
        description="Convert a length from one unit to another.",
        params=[
            required_param("value", "float", "The length to convert.", (1.5, 5.0, 10.0, 42.2, 100.0)),
            required_param(
                "from_unit", "str", "Unit of the given length.", LENGTH_UNITS, enum=True, label="source unit"
            ),
            required_param(
                "to_unit",
                "str",
                "Unit to convert to.",
                LENGTH_UNITS,
                enum=True,
                label="target unit",
                distinct_from="from_unit",
            ),
        ],
        requests=[
            "Convert {value} {from_unit} to {to_unit}.",
            "How many {to_unit} are {value} {from_unit}?",
        ],
        action="convert {value} {from_unit} to {to_unit}",
        topic="unit conversion",
        results={"result": (0.93, 3.1, 16.4, 26.2, 328.1)},
        summary="{value} {from_unit} is {result} {to_unit}.",
    ),
    # text
    tool(
        name="translate_text",
        domain="text",
        description="Translate text into another language.",
        params=[
            required_param("text", "str", "The text to translate.", PHRASES),
            required_param(
                "target_language", "str", "Language to translate into.", LANGUAGES, label="target language"
            ),
            optional_flag("formal", "Use a formal tone.", default=False, mention="Keep it formal."),
        ],
        requests=[
            "Translate '{text}' into {target_language}.",
            "How do you say '{text}' in {target_language}?",
        ],
        action="translate '{text}' into {target_language}",
        topic="translation",
        results={"translation": ("bonjour", "hola", "danke", "arigato", "grazie")},
        summary="In {target_language}, '{text}' is '{translation}'.",
    ),
    tool(
        name="count_words",
        domain="text",
        description="Count the words in a text.",
        params=[required_param("text", "str", "The text to count.", PHRASES + REVIEWS)],
        requests=[
            "How many words are in '{text}'?",
            "Count the words in '{text}'.",
        ],
        action="count the words in '{text}'",
        topic="word counts",
        results={"word_count": range(2, 8)},
        summary="'{text}' has {word_count} words.",
    ),
    tool(
        name="reverse_string",
        domain="text",
        description="Reverse the characters of a string.",
        params=[required_param("text", "str", "The string to reverse.", WORDS + PHRASES)],
        requests=[
            "Reverse the string '{text}'.",
            "What is '{text}' written backwards?",
        ],
        action="reverse '{text}'",
        topic="reversing text",
        results={"reversed": ("ytidnepires", "lamerehpe", "racecar", "level", "kayak")},
        summary="'{text}' reversed is '{reversed}'.",
    ),
    tool(
        name="check_palindrome",
        domain="text",
        description="Check whether a word reads the same forwards and backwards.",
        params=[required_param("word", "str", "The word to check.", WORDS)],
        requests=[
            "Is '{word}' a palindrome?",
            "Check if '{word}' is a palindrome.",
        ],
        action="check whether '{word}' is a palindrome",
        topic="palindromes",
        results={"is_palindrome": (True, False)},
        summary="The palindrome check for '{word}' returned {is_palindrome}.",
    ),
    tool(
        name="define_word",
        domain="text",
        description="Look up the definition of an English word.",
        params=[
            required_param("word", "str", "The word to define.", WORDS),
            optional_flag(
                "include_examples", "Add example sentences.", default=False, mention="Add some examples too."
            ),
        ],
        requests=[
            "What does '{word}' mean?",
            "Define the word '{word}'.",
        ],
        action="define '{word}'",
        topic="definitions",
        results={
            "definition": ("a happy accident", "lasting a short time", "able to recover quickly", "honest and direct")
        },
        summary="'{word}' means {definition}.",
    ),
    tool(
        name="detect_language",
        domain="text",
        description="Detect the language of a text.",
        params=[required_param("text", "str", "The text to analyse.", FOREIGN)],
        requests=[
            "Which language is '{text}'?",
            "Detect the language of '{text}'.",
        ],
        action="detect the language of '{text}'",
        topic="language detection",
        results={"language": ("French", "Spanish", "German", "Italian", "Portuguese")},
        summary="'{text}' is {language}.",
    ),
    tool(
        name="analyze_sentiment",
        domain="text",
        description="Find whether a text is positive, negative or neutral.",
        params=[required_param("text", "str", "The text to analyse.", REVIEWS)],
        requests=[
            "Is the review '{text}' positive or negative?",
            "What is the sentiment of '{text}'?",
        ],
        action="analyse the sentiment of '{text}'",
        topic="sentiment analysis",
        results={"sentiment": ("positive", "negative", "neutral"), "score": (0.12, 0.55, 0.91)},
        summary="The sentiment of '{text}' is {sentiment}.",
    ),
    # productivity
    tool(
        name="create_calendar_event",
        domain="productivity",
        description="Create an event in the calendar.",
        params=[
            required_param("title", "str", "Title of the event.", TITLES),
            DATE_PARAM,
            required_param("time", "str", "Start time in HH:MM.", TIMES),
            optional_param(
                "duration_minutes",
                "int",
                "Length of the event in minutes.",
                (30, 45, 90, 120),
                default=60,
                mention="It lasts {value} minutes.",
            ),
        ],
        requests=[
            "Add '{title}' to my calendar on {date} at {time}.",
            "Schedule '{title}' for {date} at {time}.",
        ],
        action="add '{title}' on {date} at {time}",
        topic="calendar events",
        results={"event_id": ("ev-101", "ev-202", "ev-303"), "status": ("created",)},
        summary="'{title}' is now in your calendar on {date} at {time}.",
    ),
    tool(
        name="list_calendar_events",
        domain="productivity",
        description="List the calendar events of a day.",
        params=[DATE_PARAM],
        requests=[
            "What is on my calendar on {date}?",
            "Show my events for {date}.",
        ],
        action="list your events on {date}",
        topic="your calendar",
        results={"events": range(0, 5)},
        summary="You have {events} events on {date}.",
    ),
    tool(
        name="set_alarm",
        domain="productivity",
        description="Set an alarm at a time.",
        params=[
            required_param("time", "str", "Alarm time in HH:MM.", HOURS),
            optional_param(
                "label",
                "str",
                "Name of the alarm.",
                ("Gym", "Work", "Medicine"),
                default="Alarm",
                mention="Call it {value}.",
            ),
        ],
        requests=[
            "Set an alarm for {time}.",
            "Wake me up at {time}.",
        ],
        action="set an alarm for {time}",
        topic="alarms",
        results={"status": ("set",)},
        summary="Your alarm for {time} is {status}.",
    ),
    tool(
        name="set_reminder",
        domain="productivity",
        description="Create a reminder with a message at a date and time.",
        params=[
            required_param(
                "message",
                "str",
                "What to be reminded of.",
                ("call mom", "pay the rent", "water the plants", "buy milk"),
            ),
            DATE_PARAM,
            required_param("time", "str", "Time in HH:MM.", TIMES),
        ],
        requests=[
            "Remind me to {message} on {date} at {time}.",
            "Set a reminder to {message} at {time} on {date}.",
        ],
        action="remind you to {message} on {date} at {time}",
        topic="reminders",
        results={"status": ("scheduled",)},
        summary="I will remind you to {message} on {date} at {time}.",
    ),
    tool(
        name="send_email",
        domain="productivity",
        description="Send an email to a recipient.",
        params=[
            required_param("to", "str", "Email address of the recipient.", EMAILS, label="recipient"),
            required_param("subject", "str", "Subject line.", SUBJECTS),
            optional_flag("urgent", "Mark the email as urgent.", default=False, mention="Mark it as urgent."),
        ],
        requests=[
            "Send an email to {to} with the subject '{subject}'.",
            "Email {to} about '{subject}'.",
        ],
        action="email {to} about '{subject}'",
        topic="sending emails",
        results={"status": ("sent",)},
        summary="Your email to {to} about '{subject}' was {status}.",
    ),
    tool(
        name="create_note",
        domain="productivity",
        description="Save a note with a title and optional tags.",
        params=[
            required_param(
                "title", "str", "Title of the note.", ("Shopping list", "Ideas", "Book notes", "Trip plan")
            ),
            optional_param(
                "tags",
                "List[str]",
                "Tags for the note.",
                ("home", "work", "travel", "urgent"),
                default=(),
                mention="Tag it with {value}.",
            ),
        ],
        requests=[
            "Create a note called '{title}'.",
            "Save a new note named '{title}'.",
        ],
        action="save a note called '{title}'",
        topic="notes",
        results={"note_id": ("n-17", "n-42", "n-58")},
        summary="Your note '{title}' is saved.",
    ),
    tool(
        name="start_timer",
        domain="productivity",
        description="Start a countdown timer.",
        params=[required_param("minutes", "int", "Length of the timer in minutes.", (3, 5, 10, 15, 25, 45))],
        requests=[
            "Start a timer for {minutes} minutes.",
            "Set a {minutes} minute timer.",
        ],
        action="start a {minutes} minute timer",
        topic="timers",
        results={"status": ("running",)},
        summary="Your {minutes} minute timer is {status}.",
    ),
    # shopping
    tool(
        name="search_products",
        domain="shopping",
        description="Search the online store for products.",
        params=[
            required_param("query", "str", "What to search for.", PRODUCTS, label="product"),
            optional_param(
                "max_price",
                "float",
                "Highest price to show.",
                (25.0, 49.99, 100.0),
                default=None,
                mention="Nothing above {value}.",
            ),
            optional_param(
                "sort_by",
                "str",
                "Order of the results.",
                ("relevance", "price", "rating"),
                default="relevance",
                mention="Sort them by {value}.",
                enum=True,
            ),
        ],
        requests=[
            "Search the store for {query}.",
            "Find me some {query} to buy.",
        ],
        action="search the store for {query}",
        topic="product search",
        results={"results": range(3, 40), "top_price": (19.99, 34.5, 79.0)},
        summary="I found {results} {query}; the top result costs {top_price}.",
    ),
    tool(
        name="track_order",
        domain="shopping",
        description="Track an order by its order number.",
        params=[required_param("order_id", "str", "The order number.", ORDERS, label="order number")],
        requests=[
            "Where is my order {order_id}?",
            "Track order {order_id} for me.",
        ],
        action="track order {order_id}",
        topic="order tracking",
        results={"status": ("shipped", "in transit", "delivered"), "eta": DATES},
        summary="Order {order_id} is {status} and should arrive on {eta}.",
    ),
    tool(
        name="add_to_cart",
        domain="shopping",
        description="Add a product to the shopping cart.",
        params=[
            required_param("product", "str", "Product name.", PRODUCTS),
            required_param("quantity", "int", "How many to add.", range(1, 6)),
        ],
        requests=[
            "Add {quantity} {product} to my cart.",
            "Put {quantity} {product} in the cart.",
        ],
        action="add {quantity} {product} to the cart",
        topic="your shopping cart",
        results={"cart_items": range(1, 10)},
        summary="Done, your cart now has {cart_items} items.",
    ),
    # food and health
    tool(
        name="find_recipes",
        domain="food",
        description="Find recipes that use an ingredient.",
        params=[
            required_param("ingredient", "str", "Main ingredient.", INGREDIENTS),
            optional_param(
                "diet",
                "str",
                "Diet to follow.",
                ("none", "vegetarian", "vegan", "gluten_free"),
                default="none",
                mention="It must be {value}.",
                enum=True,
            ),
            optional_param(
                "max_minutes",
                "int",
                "Longest cooking time.",
                (20, 30, 45),
                default=60,
                mention="I have only {value} minutes.",
            ),
        ],
        requests=[
            "Find a recipe with {ingredient}.",
            "What can I cook with {ingredient}?",
        ],
        action="find recipes with {ingredient}",
        topic="recipes",
        results={"recipe": ("stir fry", "curry", "soup", "salad", "pasta bake")},
        summary="Try a {ingredient} {recipe}.",
    ),
    tool(
        name="find_restaurants",
        domain="food",
        description="Find restaurants of a cuisine in a city.",
        params=[
            CITY_PARAM,
            required_param(
                "cuisine", "str", "Type of food.", ("italian", "mexican", "indian", "thai", "japanese"), enum=True
            ),
            optional_flag("open_now", "Only show places open now.", default=False, mention="It has to be open now."),
        ],
        requests=[
            "Find {cuisine} restaurants in {city}.",
            "Where can I eat {cuisine} food in {city}?",
        ],
        action="find {cuisine} restaurants in {city}",
        topic="restaurants",
        results={
            "restaurant": ("Casa Verde", "Blue Lotus", "Little Tokyo", "Spice Garden"),
            "rating": (4.1, 4.4, 4.7),
        },
        summary="{restaurant} in {city} is a good {cuisine} place, rated {rating}.",
    ),
    tool(
        name="get_nutrition_info",
        domain="health",
        description="Get the calories and protein of a food.",
        params=[
            required_param("food", "str", "The food item.", FOODS),
            optional_param(
                "grams",
                "int",
                "Portion size in grams.",
                (50, 150, 200),
                default=100,
                mention="Use a portion of {value} grams.",
            ),
        ],
        requests=[
            "How many calories are in {food}?",
            "Give me the nutrition facts for {food}.",
        ],
        action="get nutrition facts for {food}",
        topic="nutrition",
        results={"calories": range(40, 600), "protein_g": (0.3, 1.1, 6.0, 10.2, 21.0)},
        summary="A portion of {food} has {calories} calories.",
    ),
    tool(
        name="calculate_bmi",
        domain="health",
        description="Calculate the body mass index from weight and height.",
        params=[
            required_param(
                "weight_kg", "float", "Weight in kilograms.", (55.0, 62.5, 70.0, 81.2, 95.0), label="weight"
            ),
            required_param(
                "height_cm", "float", "Height in centimeters.", (158.0, 165.5, 172.0, 180.0, 191.5), label="height"
            ),
        ],
        requests=[
            "What is my BMI if I weigh {weight_kg} kg and am {height_cm} cm tall?",
            "Calculate the BMI for {weight_kg} kg and {height_cm} cm.",
        ],
        action="calculate the BMI for {weight_kg} kg and {height_cm} cm",
        topic="BMI",
        results={"bmi": (19.8, 22.4, 24.9, 27.3), "category": ("normal", "overweight")},
        summary="Your BMI is {bmi}, which is {category}.",
    ),
    tool(
        name="log_workout",
        domain="health",
        description="Log a workout in the fitness diary.",
        params=[
            required_param("activity", "str", "The sport.", ("running", "cycling", "swimming", "yoga"), enum=True),
            required_param("minutes", "int", "Duration in minutes.", (20, 30, 45, 60, 90)),
        ],
        requests=[
            "Log {minutes} minutes of {activity}.",
            "Please log a {activity} workout of {minutes} minutes.",
        ],
        action="log {minutes} minutes of {activity}",
        topic="your workouts",
        results={"calories_burned": range(80, 700)},
        summary="Logged {minutes} minutes of {activity}, about {calories_burned} calories.",
    ),
    # entertainment
    tool(
        name="get_movie_showtimes",
        domain="entertainment",
        description="Get the showtimes of a movie in a city.",
        params=[
            required_param("movie", "str", "Title of the movie.", MOVIES),
            CITY_PARAM,
        ],
        requests=[
            "When is {movie} playing in {city}?",
            "Find showtimes for {movie} in {city}.",
        ],
        action="find showtimes for {movie} in {city}",
        topic="movie showtimes",
        results={"next_show": TIMES, "cinema": ("Rex", "Odeon", "Star Cinema")},
        summary="{movie} plays next at {next_show} at the {cinema} in {city}.",
    ),
    tool(
        name="play_music",
        domain="entertainment",
        description="Play a song on the speaker.",
        params=[
            required_param("song", "str", "Title of the song.", SONGS),
            optional_param(
                "artist", "str", "Name of the artist.", ARTISTS, default=None, mention="The one by {value}."
            ),
            optional_flag("shuffle", "Shuffle the queue afterwards.", default=False, mention="Shuffle after that."),
        ],
        requests=[
            "Play {song}.",
            "Put on the song {song}.",
        ],
        action="play {song}",
        topic="music",
        results={"status": ("playing",)},
        summary="Now {status}: {song}.",
    ),
    tool(
        name="get_song_lyrics",
        domain="entertainment",
        description="Get the lyrics of a song.",
        params=[
            required_param("song", "str", "Title of the song.", SONGS),
            required_param("artist", "str", "Name of the artist.", ARTISTS),
        ],
        requests=[
            "Show me the lyrics of {song} by {artist}.",
            "What are the words to {song} by {artist}?",
        ],
        action="get the lyrics of {song} by {artist}",
        topic="song lyrics",
        results={"first_line": ("under the blue sky", "driving through the night", "we shine in golden light")},
        summary="{song} by {artist} starts with '{first_line}'.",
    ),
    tool(
        name="get_team_scores",
        domain="sports",
        description="Get the latest game score of a sports team.",
        params=[
            required_param("team", "str", "Name of the team.", TEAMS),
            optional_param(
                "season", "int", "Season year.", (2021, 2022, 2023), default=2024, mention="For the {value} season."
            ),
        ],
        requests=[
            "How did the {team} do in their last game?",
            "What was the score of the last {team} game?",
        ],
        action="get the last score of the {team}",
        topic="sports scores",
        results={"score": ("2-1", "0-0", "3-2", "1-4"), "opponent": TEAMS},
        summary="The {team} played the {opponent} and the score was {score}.",
    ),
    tool(
        name="get_news_headlines",
        domain="news",
        description="Get the latest news headlines on a topic.",
        params=[
            required_param("topic", "str", "News topic.", TOPICS, enum=True),
            optional_param(
                "count", "int", "How many headlines.", (3, 10), default=5, mention="Just {value} headlines."
            ),
        ],
        requests=[
            "What is the latest {topic} news?",
            "Show me {topic} headlines.",
        ],
        action="get the latest {topic} headlines",
        topic="news",
        results={
            "top_headline": (
                "New chip breaks records",
                "Local team wins the cup",
                "Markets close higher",
                "Scientists map a new star",
            )
        },
        summary="The top {topic} story is: {top_headline}.",
    ),
    tool(
        name="get_random_joke",
        domain="entertainment",
        description="Get a random joke.",
        params=[],
        requests=[
            "Tell me a joke.",
            "Make me laugh with a joke.",
        ],
        action="get a joke",
        topic="jokes",
        results={"joke": ("Why did the scarecrow win an award? He was outstanding in his field.",)},
        summary="Here is one: {joke}",
    ),
    tool(
        name="get_daily_quote",
        domain="entertainment",
        description="Get the quote of the day.",
        params=[],
        requests=[
            "What is the quote of the day?",
            "Give me today's quote.",
        ],
        action="get the quote of the day",
        topic="daily quotes",
        results={"quote": ("Small steps every day.", "Stay curious.")},
        summary="Today's quote is: {quote}",
    ),
    # knowledge
    tool(
        name="get_country_info",
        domain="knowledge",
        description="Get facts about a country: capital, population and currency.",
        params=[required_param("country", "str", "Name of the country.", COUNTRIES)],
        requests=[
            "Tell me about {country}.",
            "What is the capital of {country}?",
        ],
        action="look up facts about {country}",
        topic="country facts",
        results={"capital": ("Paris", "Tokyo", "Brasilia", "Ottawa", "Nairobi", "New Delhi", "Berlin", "Mexico City")},
        summary="The capital of {country} is {capital}.",
    ),
    tool(
        name="get_public_holidays",
        domain="knowledge",
        description="List the public holidays of a country in a year.",
        params=[
            required_param("country", "str", "Name of the country.", COUNTRIES),
            required_param("year", "int", "The year.", (2023, 2024, 2025)),
        ],
        requests=[
            "What are the public holidays in {country} in {year}?",
            "List the {year} holidays of {country}.",
        ],
        action="list the {year} holidays of {country}",
        topic="public holidays",
        results={"holidays": range(8, 16)},
        summary="{country} has {holidays} public holidays in {year}.",
    ),
    tool(
        name="get_local_time",
        domain="knowledge",
        description="Get the local time in a city.",
        params=[CITY_PARAM],
        requests=[
            "What time is it in {city}?",
            "Tell me the local time in {city}.",
        ],
        action="check the time in {city}",
        topic="local time",
        results={"time": TIMES},
        summary="It is {time} in {city}.",
    ),
    # smart home
    tool(
        name="set_thermostat",
        domain="smart_home",
        description="Set the thermostat of a room to a temperature.",
        params=[
            required_param("temperature", "int", "Target temperature in celsius.", range(17, 26)),
            optional_param(
                "room", "str", "Which room.", ROOMS, default="living room", mention="Do it in the {value}.", enum=True
            ),
        ],
        requests=[
            "Set the heating to {temperature} degrees.",
            "Change the thermostat to {temperature} degrees.",
        ],
        action="set the thermostat to {temperature} degrees",
        topic="the thermostat",
        results={"status": ("updated",)},
        summary="The thermostat is {status} to {temperature} degrees.",
    ),
    tool(
        name="turn_on_lights",
        domain="smart_home",
        description="Turn on the lights in a room.",
        params=[
            required_param("room", "str", "Which room.", ROOMS, enum=True),
            optional_param(
                "brightness",
                "int",
                "Brightness in percent.",
                (20, 50, 75),
                default=100,
                mention="Set them to {value} percent.",
            ),
        ],
        requests=[
            "Turn on the lights in the {room}.",
            "Switch the {room} lights on.",
        ],
        action="turn on the lights in the {room}",
        topic="the lights",
        results={"status": ("on",)},
        summary="The {room} lights are {status}.",
    ),
    # utilities
    tool(
        name="generate_password",
        domain="utilities",
        description="Generate a random password.",
        params=[
            required_param("length", "int", "Number of characters.", (8, 12, 16, 20)),
            optional_flag("include_symbols", "Use symbols.", default=True, mention="Do not use symbols."),
        ],
        requests=[
            "Generate a password with {length} characters.",
            "I need a new {length} character password.",
        ],
        action="generate a {length} character password",
        topic="passwords",
        results={"password": ("k3Tr9xQ2", "Lm8pZ4wQ1vBn", "Xr5tGh2kLp9sWq3e")},
        summary="Your new password is {password}.",
    ),
    tool(
        name="shorten_url",
        domain="utilities",
        description="Make a short link for a long URL.",
        params=[required_param("url", "str", "The long URL.", URLS, label="link")],
        requests=[
            "Shorten this link: {url}",
            "Make a short URL for {url}.",
        ],
        action="shorten {url}",
        topic="short links",
        results={"short_url": ("https://sho.rt/a1", "https://sho.rt/b2", "https://sho.rt/c3")},
        summary="Your short link is {short_url}.",
    ),
    tool(
        name="search_jobs",
        domain="work",
        description="Search job offers by title and city.",
        params=[
            required_param("title", "str", "Job title.", JOBS, label="job title"),
            CITY_PARAM,
            optional_flag("remote", "Only remote jobs.", default=False, mention="Remote only, please."),
        ],
        requests=[
            "Find {title} jobs in {city}.",
            "Are there any {title} openings in {city}?",
        ],
        action="search {title} jobs in {city}",
        topic="job search",
        results={"openings": range(0, 40)},
        summary="There are {openings} {title} openings in {city}.",
    ),
    tool(
        name="search_books",
        domain="books",
        description="Search books by author.",
        params=[
            required_param("author", "str", "Name of the author.", AUTHORS),
            optional_param(
                "max_results", "int", "How many books to return.", (3, 10), default=5, mention="Show {value} books."
            ),
        ],
        requests=[
            "Find books by {author}.",
            "What books did {author} write?",
        ],
        action="find books by {author}",
        topic="books",
        results={"top_title": ("Emma", "Tom Sawyer", "Poirot Investigates", "War and Peace")},
        summary="A well known book by {author} is {top_title}.",
    ),
)

__all__ = ["TOOLS", "ParamSpec", "SyntheticTool", "optional_flag", "optional_param", "required_param", "tool"]
