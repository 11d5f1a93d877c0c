"""A seeded generator of tool-calling tasks in the ToolRL grammar: the project's embedded default data.

It needs no network and no files, so the demo, the tests and a first training run work
anywhere. Tasks look like the paper's data (the same system prompt, dialogue history and
output format, all rendered by :mod:`toolrl_trl.grammar`) and cover what the paper's mix
covers: one call, several parallel calls, no tool at all (a ``<response>``), a call plus a
response, and dialogues with earlier turns and ``<obs>`` tool results.

Parameters are typed (strings, integers, floats, booleans, enums, lists, optional ones with
defaults) and calls carry typed JSON values, because the correctness reward compares values
with ``==``. Some tools can be held out of training entirely (never listed in a training
prompt), so a test split made of tasks about them measures generalisation to unseen tools.

Determinism: every random choice comes from :class:`random.Random` seeded with a string
(stable across processes and ``PYTHONHASHSEED``), and nothing iterates over a set, so the
same seed gives the same data byte for byte.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolrl_trl import grammar

TASK_KINDS = ("single", "parallel", "no_tool", "call_and_response", "multi_turn")
DEFAULT_TASK_WEIGHTS: dict[str, float] = {
    "single": 3.0,
    "parallel": 2.0,
    "no_tool": 1.5,
    "call_and_response": 1.0,
    "multi_turn": 2.5,
}
#: Probability that a request mentions one of the tool's optional parameters.
OPTIONAL_MENTION_RATE = 0.35

# ---------------------------------------------------------------------------------------------------------------------
# Tool catalogue
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


def _p(name: str, type_: str, description: str, pool: Sequence[Any], **kwargs: Any) -> ParamSpec:
    return ParamSpec(name, type_, description, tuple(pool), **kwargs)


def _opt(
    name: str, type_: str, description: str, pool: Sequence[Any], default: Any, mention: str, **kwargs
) -> ParamSpec:
    return ParamSpec(name, type_, description, tuple(pool), required=False, default=default, mention=mention, **kwargs)


def _flag(name: str, description: str, default: bool, mention: str, **kwargs: Any) -> ParamSpec:
    """An optional boolean; a request mentions it only to ask for the non-default value."""
    return ParamSpec(
        name, "bool", description, (True, False), required=False, default=default, mention=mention, **kwargs
    )


def _tool(
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
    return SyntheticTool(
        name,
        domain,
        description,
        tuple(params),
        tuple(requests),
        action,
        topic,
        tuple((key, tuple(values)) for key, values in results.items()),
        summary,
    )


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


def _catalog() -> tuple[SyntheticTool, ...]:
    """The fixed catalogue (order matters for determinism: it is never sorted by hash)."""
    city = _p("city", "str", "Name of the city.", CITIES)
    date = _p("date", "str", "The date in YYYY-MM-DD format.", DATES)
    return (
        # weather
        _tool(
            "get_current_weather",
            "weather",
            "Get the current weather for a city.",
            [
                city,
                _opt(
                    "units",
                    "str",
                    "Temperature units.",
                    ("celsius", "fahrenheit"),
                    "celsius",
                    "Use {value}.",
                    enum=True,
                ),
            ],
            [
                "What is the weather in {city} right now?",
                "How is the weather in {city}?",
                "Check the weather in {city}.",
            ],
            "check the weather in {city}",
            "the weather",
            {"temperature": range(-5, 36), "condition": CONDITIONS},
            "It is {temperature} degrees and {condition} in {city}.",
        ),
        _tool(
            "get_weather_forecast",
            "weather",
            "Get the weather forecast for the next days in a city.",
            [city, _p("days", "int", "Number of days to forecast, from 2 to 7.", range(2, 8))],
            ["What is the forecast for {city} for the next {days} days?", "Give me a {days} day forecast for {city}."],
            "get a {days} day forecast for {city}",
            "weather forecasts",
            {"condition": CONDITIONS, "high": range(5, 36), "low": range(-8, 20)},
            "The next {days} days in {city} look {condition}, with highs of {high} and lows of {low} degrees.",
        ),
        _tool(
            "get_air_quality",
            "weather",
            "Get the air quality index of a city.",
            [city],
            ["How is the air quality in {city}?", "Is the air clean in {city} today?"],
            "check the air quality in {city}",
            "air quality",
            {"aqi": range(10, 180), "level": ("good", "moderate", "unhealthy")},
            "The air quality index in {city} is {aqi}, which is {level}.",
        ),
        # travel
        _tool(
            "search_flights",
            "travel",
            "Search for flights between two cities on a date.",
            [
                _p("origin", "str", "City of departure.", CITIES, label="departure city"),
                _p("destination", "str", "City of arrival.", CITIES, label="destination", distinct_from="origin"),
                date,
                _opt(
                    "cabin",
                    "str",
                    "Cabin class.",
                    ("economy", "business", "first"),
                    "economy",
                    "I want {value} class.",
                    enum=True,
                ),
                _opt(
                    "max_stops", "int", "Maximum number of stops.", (0, 1, 2), 1, "No more than {value} stops, please."
                ),
            ],
            [
                "Find flights from {origin} to {destination} on {date}.",
                "I need a flight from {origin} to {destination} on {date}.",
            ],
            "search flights from {origin} to {destination} on {date}",
            "flight search",
            {"flights_found": range(1, 15), "lowest_price": range(80, 900)},
            "I found {flights_found} flights from {origin} to {destination}; the cheapest costs {lowest_price} dollars.",
        ),
        _tool(
            "get_flight_status",
            "travel",
            "Get the live status of a flight by its number.",
            [_p("flight_number", "str", "The flight number, like AF12.", FLIGHTS, label="flight number")],
            ["What is the status of flight {flight_number}?", "Is flight {flight_number} on time?"],
            "check the status of flight {flight_number}",
            "flight status",
            {"status": STATUSES, "gate": ("A3", "B7", "C12", "D2")},
            "Flight {flight_number} is {status} at gate {gate}.",
        ),
        _tool(
            "search_hotels",
            "travel",
            "Search for hotels in a city for a number of nights.",
            [
                city,
                _p("check_in", "str", "Check-in date in YYYY-MM-DD format.", DATES, label="check-in date"),
                _p("nights", "int", "Number of nights.", range(2, 8)),
                _opt(
                    "max_price",
                    "float",
                    "Maximum price per night.",
                    (80.0, 120.5, 150.0, 199.99),
                    None,
                    "Keep it under {value} per night.",
                ),
            ],
            [
                "Find a hotel in {city} from {check_in} for {nights} nights.",
                "Look for a hotel in {city}: {nights} nights starting {check_in}.",
            ],
            "search hotels in {city} for {nights} nights from {check_in}",
            "hotel search",
            {"hotels_found": range(2, 30), "best_rating": (3.9, 4.2, 4.5, 4.8)},
            "There are {hotels_found} hotels in {city}; the best rated has {best_rating} stars.",
        ),
        _tool(
            "book_taxi",
            "travel",
            "Book a taxi from a pickup place at a given time.",
            [
                _p("pickup", "str", "Where the taxi picks you up.", PLACES, label="pickup place"),
                _p("time", "str", "Pickup time in HH:MM.", TIMES),
            ],
            ["Book a taxi from {pickup} at {time}.", "I need a cab at {pickup} at {time}."],
            "book a taxi from {pickup} at {time}",
            "taxi booking",
            {"driver": PEOPLE, "minutes_away": range(2, 20)},
            "Your taxi from {pickup} is booked; {driver} will pick you up at {time}.",
        ),
        _tool(
            "get_directions",
            "travel",
            "Get directions between two places.",
            [
                _p("origin", "str", "Starting place.", PLACES, label="starting place"),
                _p("destination", "str", "Place to reach.", PLACES, distinct_from="origin"),
                _opt(
                    "mode",
                    "str",
                    "How to travel.",
                    ("driving", "walking", "transit"),
                    "driving",
                    "I will be {value}.",
                    enum=True,
                ),
            ],
            ["How do I get from {origin} to {destination}?", "Show me the way from {origin} to {destination}."],
            "find the way from {origin} to {destination}",
            "directions",
            {"minutes": range(5, 60), "distance_km": (1.2, 3.5, 5.0, 8.4, 12.0)},
            "It takes about {minutes} minutes to get from {origin} to {destination}.",
        ),
        # finance
        _tool(
            "get_stock_price",
            "finance",
            "Get the latest stock price for a ticker symbol.",
            [_p("symbol", "str", "The stock ticker symbol.", STOCKS, label="ticker symbol")],
            ["What is the stock price of {symbol}?", "How much is {symbol} trading at?"],
            "look up the price of {symbol}",
            "stock prices",
            {"price": (120.5, 215.75, 98.2, 430.1, 178.0), "change_percent": (-2.1, -0.4, 0.8, 1.6, 3.2)},
            "{symbol} trades at {price} dollars, a change of {change_percent} percent today.",
        ),
        _tool(
            "convert_currency",
            "finance",
            "Convert an amount of money from one currency to another.",
            [
                _p("amount", "float", "The amount to convert.", (10.0, 25.5, 100.0, 250.0, 1200.0)),
                _p("from_currency", "str", "Currency code to convert from.", CURRENCIES, label="source currency"),
                _p(
                    "to_currency",
                    "str",
                    "Currency code to convert to.",
                    CURRENCIES,
                    label="target currency",
                    distinct_from="from_currency",
                ),
            ],
            [
                "Convert {amount} {from_currency} to {to_currency}.",
                "How much is {amount} {from_currency} in {to_currency}?",
            ],
            "convert {amount} {from_currency} to {to_currency}",
            "currency conversion",
            {"converted": (9.2, 23.4, 91.7, 268.3, 1105.9), "rate": (0.92, 1.08, 0.79, 1.27)},
            "{amount} {from_currency} is {converted} {to_currency}.",
        ),
        _tool(
            "calculate_loan_payment",
            "finance",
            "Calculate the monthly payment of a loan.",
            [
                _p("principal", "float", "The loan amount.", (5000.0, 12000.0, 25000.0, 180000.0)),
                _p("annual_rate", "float", "Yearly interest rate in percent.", (3.5, 4.2, 5.0, 6.75)),
                _p("years", "int", "Length of the loan in years.", (2, 5, 10, 15, 30)),
            ],
            ["What is the monthly payment on a {principal} loan at {annual_rate} percent for {years} years?"],
            "compute the payment of a {principal} loan over {years} years",
            "loan payments",
            {"monthly_payment": (145.3, 398.8, 512.4, 1020.6)},
            "The monthly payment would be {monthly_payment} dollars.",
        ),
        _tool(
            "get_crypto_price",
            "finance",
            "Get the current price of a cryptocurrency.",
            [
                _p("coin", "str", "Name of the coin.", COINS),
                _opt(
                    "currency",
                    "str",
                    "Currency for the price.",
                    ("USD", "EUR", "GBP"),
                    "USD",
                    "Give it in {value}.",
                    enum=True,
                ),
            ],
            ["What is the price of {coin} now?", "How much is one {coin} worth?"],
            "get the price of {coin}",
            "crypto prices",
            {"price": (0.45, 152.3, 2890.5, 61200.0)},
            "One {coin} is worth {price} right now.",
        ),
        _tool(
            "calculate_tip",
            "finance",
            "Calculate the tip for a bill and split it between people.",
            [
                _p("bill_amount", "float", "Total of the bill.", (24.5, 48.0, 86.4, 130.0), label="bill amount"),
                _opt("tip_percent", "int", "Tip in percent.", (10, 15, 18, 20), 15, "Tip {value} percent."),
                _opt(
                    "split",
                    "int",
                    "Number of people sharing the bill.",
                    (2, 3, 4),
                    1,
                    "Split it between {value} people.",
                ),
            ],
            ["How much tip should I leave on a {bill_amount} bill?", "Work out the tip for a bill of {bill_amount}."],
            "work out the tip on a {bill_amount} bill",
            "tips",
            {"tip": (3.7, 7.2, 13.0, 19.5), "total": (28.2, 55.2, 99.4, 149.5)},
            "The tip is {tip}, for a total of {total}.",
        ),
        # math
        _tool(
            "is_prime",
            "math",
            "Check whether a number is prime.",
            [_p("number", "int", "The number to check.", (7, 15, 29, 51, 97, 121, 113))],
            ["Is {number} a prime number?", "Check if {number} is prime."],
            "check whether {number} is prime",
            "prime numbers",
            {"is_prime": (True, False)},
            "The answer for {number} is {is_prime}.",
        ),
        _tool(
            "calculate_factorial",
            "math",
            "Calculate the factorial of a non-negative integer.",
            [_p("n", "int", "The non-negative integer.", range(3, 13), label="number")],
            ["What is the factorial of {n}?", "Compute {n} factorial."],
            "compute the factorial of {n}",
            "factorials",
            {"result": (6, 24, 120, 720, 5040, 40320)},
            "The factorial of {n} is {result}.",
        ),
        _tool(
            "find_gcd",
            "math",
            "Find the greatest common divisor of two integers.",
            [
                _p("a", "int", "The first integer.", (12, 18, 24, 36, 48, 60), label="first number"),
                _p("b", "int", "The second integer.", (8, 20, 30, 42, 54), label="second number"),
            ],
            ["What is the greatest common divisor of {a} and {b}?", "Find the gcd of {a} and {b}."],
            "find the gcd of {a} and {b}",
            "greatest common divisors",
            {"gcd": (2, 4, 6, 12)},
            "The greatest common divisor of {a} and {b} is {gcd}.",
        ),
        _tool(
            "generate_random_number",
            "math",
            "Generate a random integer between a minimum and a maximum.",
            [
                _p("min_value", "int", "Smallest allowed value.", (1, 10, 50), label="minimum"),
                _p("max_value", "int", "Largest allowed value.", (100, 500, 1000), label="maximum"),
            ],
            [
                "Give me a random number between {min_value} and {max_value}.",
                "Pick a random integer from {min_value} to {max_value}.",
            ],
            "pick a random number between {min_value} and {max_value}",
            "random numbers",
            {"number": (42, 77, 318, 905)},
            "Your random number is {number}.",
        ),
        _tool(
            "calculate_average",
            "math",
            "Calculate the average of a list of numbers.",
            [_p("numbers", "List[int]", "The numbers to average.", (3, 8, 12, 15, 21, 30, 42), label="numbers")],
            ["What is the average of {numbers}?", "Calculate the mean of {numbers}."],
            "average {numbers}",
            "averages",
            {"average": (8.5, 12.0, 17.3, 24.6)},
            "The average is {average}.",
        ),
        _tool(
            "convert_length",
            "math",
            "Convert a length from one unit to another.",
            [
                _p("value", "float", "The length to convert.", (1.5, 5.0, 10.0, 42.2, 100.0)),
                _p("from_unit", "str", "Unit of the given length.", LENGTH_UNITS, enum=True, label="source unit"),
                _p(
                    "to_unit",
                    "str",
                    "Unit to convert to.",
                    LENGTH_UNITS,
                    enum=True,
                    label="target unit",
                    distinct_from="from_unit",
                ),
            ],
            ["Convert {value} {from_unit} to {to_unit}.", "How many {to_unit} are {value} {from_unit}?"],
            "convert {value} {from_unit} to {to_unit}",
            "unit conversion",
            {"result": (0.93, 3.1, 16.4, 26.2, 328.1)},
            "{value} {from_unit} is {result} {to_unit}.",
        ),
        # text
        _tool(
            "translate_text",
            "text",
            "Translate text into another language.",
            [
                _p("text", "str", "The text to translate.", PHRASES),
                _p("target_language", "str", "Language to translate into.", LANGUAGES, label="target language"),
                _opt("formal", "bool", "Use a formal tone.", (True, False), False, "Keep it formal."),
            ],
            ["Translate '{text}' into {target_language}.", "How do you say '{text}' in {target_language}?"],
            "translate '{text}' into {target_language}",
            "translation",
            {"translation": ("bonjour", "hola", "danke", "arigato", "grazie")},
            "In {target_language}, '{text}' is '{translation}'.",
        ),
        _tool(
            "count_words",
            "text",
            "Count the words in a text.",
            [_p("text", "str", "The text to count.", PHRASES + REVIEWS)],
            ["How many words are in '{text}'?", "Count the words in '{text}'."],
            "count the words in '{text}'",
            "word counts",
            {"word_count": range(2, 8)},
            "'{text}' has {word_count} words.",
        ),
        _tool(
            "reverse_string",
            "text",
            "Reverse the characters of a string.",
            [_p("text", "str", "The string to reverse.", WORDS + PHRASES)],
            ["Reverse the string '{text}'.", "What is '{text}' written backwards?"],
            "reverse '{text}'",
            "reversing text",
            {"reversed": ("ytidnepires", "lamerehpe", "racecar", "level", "kayak")},
            "'{text}' reversed is '{reversed}'.",
        ),
        _tool(
            "check_palindrome",
            "text",
            "Check whether a word reads the same forwards and backwards.",
            [_p("word", "str", "The word to check.", WORDS)],
            ["Is '{word}' a palindrome?", "Check if '{word}' is a palindrome."],
            "check whether '{word}' is a palindrome",
            "palindromes",
            {"is_palindrome": (True, False)},
            "The palindrome check for '{word}' returned {is_palindrome}.",
        ),
        _tool(
            "define_word",
            "text",
            "Look up the definition of an English word.",
            [
                _p("word", "str", "The word to define.", WORDS),
                _flag("include_examples", "Add example sentences.", False, "Add some examples too."),
            ],
            ["What does '{word}' mean?", "Define the word '{word}'."],
            "define '{word}'",
            "definitions",
            {
                "definition": (
                    "a happy accident",
                    "lasting a short time",
                    "able to recover quickly",
                    "honest and direct",
                )
            },
            "'{word}' means {definition}.",
        ),
        _tool(
            "detect_language",
            "text",
            "Detect the language of a text.",
            [_p("text", "str", "The text to analyse.", FOREIGN)],
            ["Which language is '{text}'?", "Detect the language of '{text}'."],
            "detect the language of '{text}'",
            "language detection",
            {"language": ("French", "Spanish", "German", "Italian", "Portuguese")},
            "'{text}' is {language}.",
        ),
        _tool(
            "analyze_sentiment",
            "text",
            "Find whether a text is positive, negative or neutral.",
            [_p("text", "str", "The text to analyse.", REVIEWS)],
            ["Is the review '{text}' positive or negative?", "What is the sentiment of '{text}'?"],
            "analyse the sentiment of '{text}'",
            "sentiment analysis",
            {"sentiment": ("positive", "negative", "neutral"), "score": (0.12, 0.55, 0.91)},
            "The sentiment of '{text}' is {sentiment}.",
        ),
        # productivity
        _tool(
            "create_calendar_event",
            "productivity",
            "Create an event in the calendar.",
            [
                _p("title", "str", "Title of the event.", TITLES),
                date,
                _p("time", "str", "Start time in HH:MM.", TIMES),
                _opt(
                    "duration_minutes",
                    "int",
                    "Length of the event in minutes.",
                    (30, 45, 90, 120),
                    60,
                    "It lasts {value} minutes.",
                ),
            ],
            ["Add '{title}' to my calendar on {date} at {time}.", "Schedule '{title}' for {date} at {time}."],
            "add '{title}' on {date} at {time}",
            "calendar events",
            {"event_id": ("ev-101", "ev-202", "ev-303"), "status": ("created",)},
            "'{title}' is now in your calendar on {date} at {time}.",
        ),
        _tool(
            "list_calendar_events",
            "productivity",
            "List the calendar events of a day.",
            [date],
            ["What is on my calendar on {date}?", "Show my events for {date}."],
            "list your events on {date}",
            "your calendar",
            {"events": range(0, 5)},
            "You have {events} events on {date}.",
        ),
        _tool(
            "set_alarm",
            "productivity",
            "Set an alarm at a time.",
            [
                _p("time", "str", "Alarm time in HH:MM.", HOURS),
                _opt("label", "str", "Name of the alarm.", ("Gym", "Work", "Medicine"), "Alarm", "Call it {value}."),
            ],
            ["Set an alarm for {time}.", "Wake me up at {time}."],
            "set an alarm for {time}",
            "alarms",
            {"status": ("set",)},
            "Your alarm for {time} is {status}.",
        ),
        _tool(
            "set_reminder",
            "productivity",
            "Create a reminder with a message at a date and time.",
            [
                _p(
                    "message",
                    "str",
                    "What to be reminded of.",
                    ("call mom", "pay the rent", "water the plants", "buy milk"),
                ),
                date,
                _p("time", "str", "Time in HH:MM.", TIMES),
            ],
            ["Remind me to {message} on {date} at {time}.", "Set a reminder to {message} at {time} on {date}."],
            "remind you to {message} on {date} at {time}",
            "reminders",
            {"status": ("scheduled",)},
            "I will remind you to {message} on {date} at {time}.",
        ),
        _tool(
            "send_email",
            "productivity",
            "Send an email to a recipient.",
            [
                _p("to", "str", "Email address of the recipient.", EMAILS, label="recipient"),
                _p("subject", "str", "Subject line.", SUBJECTS),
                _flag("urgent", "Mark the email as urgent.", False, "Mark it as urgent."),
            ],
            ["Send an email to {to} with the subject '{subject}'.", "Email {to} about '{subject}'."],
            "email {to} about '{subject}'",
            "sending emails",
            {"status": ("sent",)},
            "Your email to {to} about '{subject}' was {status}.",
        ),
        _tool(
            "create_note",
            "productivity",
            "Save a note with a title and optional tags.",
            [
                _p("title", "str", "Title of the note.", ("Shopping list", "Ideas", "Book notes", "Trip plan")),
                _opt(
                    "tags",
                    "List[str]",
                    "Tags for the note.",
                    ("home", "work", "travel", "urgent"),
                    (),
                    "Tag it with {value}.",
                ),
            ],
            ["Create a note called '{title}'.", "Save a new note named '{title}'."],
            "save a note called '{title}'",
            "notes",
            {"note_id": ("n-17", "n-42", "n-58")},
            "Your note '{title}' is saved.",
        ),
        _tool(
            "start_timer",
            "productivity",
            "Start a countdown timer.",
            [_p("minutes", "int", "Length of the timer in minutes.", (3, 5, 10, 15, 25, 45))],
            ["Start a timer for {minutes} minutes.", "Set a {minutes} minute timer."],
            "start a {minutes} minute timer",
            "timers",
            {"status": ("running",)},
            "Your {minutes} minute timer is {status}.",
        ),
        # shopping
        _tool(
            "search_products",
            "shopping",
            "Search the online store for products.",
            [
                _p("query", "str", "What to search for.", PRODUCTS, label="product"),
                _opt(
                    "max_price",
                    "float",
                    "Highest price to show.",
                    (25.0, 49.99, 100.0),
                    None,
                    "Nothing above {value}.",
                ),
                _opt(
                    "sort_by",
                    "str",
                    "Order of the results.",
                    ("relevance", "price", "rating"),
                    "relevance",
                    "Sort them by {value}.",
                    enum=True,
                ),
            ],
            ["Search the store for {query}.", "Find me some {query} to buy."],
            "search the store for {query}",
            "product search",
            {"results": range(3, 40), "top_price": (19.99, 34.5, 79.0)},
            "I found {results} {query}; the top result costs {top_price}.",
        ),
        _tool(
            "track_order",
            "shopping",
            "Track an order by its order number.",
            [_p("order_id", "str", "The order number.", ORDERS, label="order number")],
            ["Where is my order {order_id}?", "Track order {order_id} for me."],
            "track order {order_id}",
            "order tracking",
            {"status": ("shipped", "in transit", "delivered"), "eta": DATES},
            "Order {order_id} is {status} and should arrive on {eta}.",
        ),
        _tool(
            "add_to_cart",
            "shopping",
            "Add a product to the shopping cart.",
            [_p("product", "str", "Product name.", PRODUCTS), _p("quantity", "int", "How many to add.", range(1, 6))],
            ["Add {quantity} {product} to my cart.", "Put {quantity} {product} in the cart."],
            "add {quantity} {product} to the cart",
            "your shopping cart",
            {"cart_items": range(1, 10)},
            "Done, your cart now has {cart_items} items.",
        ),
        # food and health
        _tool(
            "find_recipes",
            "food",
            "Find recipes that use an ingredient.",
            [
                _p("ingredient", "str", "Main ingredient.", INGREDIENTS),
                _opt(
                    "diet",
                    "str",
                    "Diet to follow.",
                    ("none", "vegetarian", "vegan", "gluten_free"),
                    "none",
                    "It must be {value}.",
                    enum=True,
                ),
                _opt("max_minutes", "int", "Longest cooking time.", (20, 30, 45), 60, "I have only {value} minutes."),
            ],
            ["Find a recipe with {ingredient}.", "What can I cook with {ingredient}?"],
            "find recipes with {ingredient}",
            "recipes",
            {"recipe": ("stir fry", "curry", "soup", "salad", "pasta bake")},
            "Try a {ingredient} {recipe}.",
        ),
        _tool(
            "find_restaurants",
            "food",
            "Find restaurants of a cuisine in a city.",
            [
                city,
                _p("cuisine", "str", "Type of food.", ("italian", "mexican", "indian", "thai", "japanese"), enum=True),
                _flag("open_now", "Only show places open now.", False, "It has to be open now."),
            ],
            ["Find {cuisine} restaurants in {city}.", "Where can I eat {cuisine} food in {city}?"],
            "find {cuisine} restaurants in {city}",
            "restaurants",
            {"restaurant": ("Casa Verde", "Blue Lotus", "Little Tokyo", "Spice Garden"), "rating": (4.1, 4.4, 4.7)},
            "{restaurant} in {city} is a good {cuisine} place, rated {rating}.",
        ),
        _tool(
            "get_nutrition_info",
            "health",
            "Get the calories and protein of a food.",
            [
                _p("food", "str", "The food item.", FOODS),
                _opt("grams", "int", "Portion size in grams.", (50, 150, 200), 100, "Use a portion of {value} grams."),
            ],
            ["How many calories are in {food}?", "Give me the nutrition facts for {food}."],
            "get nutrition facts for {food}",
            "nutrition",
            {"calories": range(40, 600), "protein_g": (0.3, 1.1, 6.0, 10.2, 21.0)},
            "A portion of {food} has {calories} calories.",
        ),
        _tool(
            "calculate_bmi",
            "health",
            "Calculate the body mass index from weight and height.",
            [
                _p("weight_kg", "float", "Weight in kilograms.", (55.0, 62.5, 70.0, 81.2, 95.0), label="weight"),
                _p(
                    "height_cm", "float", "Height in centimeters.", (158.0, 165.5, 172.0, 180.0, 191.5), label="height"
                ),
            ],
            [
                "What is my BMI if I weigh {weight_kg} kg and am {height_cm} cm tall?",
                "Calculate the BMI for {weight_kg} kg and {height_cm} cm.",
            ],
            "calculate the BMI for {weight_kg} kg and {height_cm} cm",
            "BMI",
            {"bmi": (19.8, 22.4, 24.9, 27.3), "category": ("normal", "overweight")},
            "Your BMI is {bmi}, which is {category}.",
        ),
        _tool(
            "log_workout",
            "health",
            "Log a workout in the fitness diary.",
            [
                _p("activity", "str", "The sport.", ("running", "cycling", "swimming", "yoga"), enum=True),
                _p("minutes", "int", "Duration in minutes.", (20, 30, 45, 60, 90)),
            ],
            ["Log {minutes} minutes of {activity}.", "Please log a {activity} workout of {minutes} minutes."],
            "log {minutes} minutes of {activity}",
            "your workouts",
            {"calories_burned": range(80, 700)},
            "Logged {minutes} minutes of {activity}, about {calories_burned} calories.",
        ),
        # entertainment
        _tool(
            "get_movie_showtimes",
            "entertainment",
            "Get the showtimes of a movie in a city.",
            [_p("movie", "str", "Title of the movie.", MOVIES), city],
            ["When is {movie} playing in {city}?", "Find showtimes for {movie} in {city}."],
            "find showtimes for {movie} in {city}",
            "movie showtimes",
            {"next_show": TIMES, "cinema": ("Rex", "Odeon", "Star Cinema")},
            "{movie} plays next at {next_show} at the {cinema} in {city}.",
        ),
        _tool(
            "play_music",
            "entertainment",
            "Play a song on the speaker.",
            [
                _p("song", "str", "Title of the song.", SONGS),
                _opt("artist", "str", "Name of the artist.", ARTISTS, None, "The one by {value}."),
                _flag("shuffle", "Shuffle the queue afterwards.", False, "Shuffle after that."),
            ],
            ["Play {song}.", "Put on the song {song}."],
            "play {song}",
            "music",
            {"status": ("playing",)},
            "Now {status}: {song}.",
        ),
        _tool(
            "get_song_lyrics",
            "entertainment",
            "Get the lyrics of a song.",
            [_p("song", "str", "Title of the song.", SONGS), _p("artist", "str", "Name of the artist.", ARTISTS)],
            ["Show me the lyrics of {song} by {artist}.", "What are the words to {song} by {artist}?"],
            "get the lyrics of {song} by {artist}",
            "song lyrics",
            {"first_line": ("under the blue sky", "driving through the night", "we shine in golden light")},
            "{song} by {artist} starts with '{first_line}'.",
        ),
        _tool(
            "get_team_scores",
            "sports",
            "Get the latest game score of a sports team.",
            [
                _p("team", "str", "Name of the team.", TEAMS),
                _opt("season", "int", "Season year.", (2021, 2022, 2023), 2024, "For the {value} season."),
            ],
            ["How did the {team} do in their last game?", "What was the score of the last {team} game?"],
            "get the last score of the {team}",
            "sports scores",
            {"score": ("2-1", "0-0", "3-2", "1-4"), "opponent": TEAMS},
            "The {team} played the {opponent} and the score was {score}.",
        ),
        _tool(
            "get_news_headlines",
            "news",
            "Get the latest news headlines on a topic.",
            [
                _p("topic", "str", "News topic.", TOPICS, enum=True),
                _opt("count", "int", "How many headlines.", (3, 10), 5, "Just {value} headlines."),
            ],
            ["What is the latest {topic} news?", "Show me {topic} headlines."],
            "get the latest {topic} headlines",
            "news",
            {
                "top_headline": (
                    "New chip breaks records",
                    "Local team wins the cup",
                    "Markets close higher",
                    "Scientists map a new star",
                )
            },
            "The top {topic} story is: {top_headline}.",
        ),
        _tool(
            "get_random_joke",
            "entertainment",
            "Get a random joke.",
            [],
            ["Tell me a joke.", "Make me laugh with a joke."],
            "get a joke",
            "jokes",
            {"joke": ("Why did the scarecrow win an award? He was outstanding in his field.",)},
            "Here is one: {joke}",
        ),
        _tool(
            "get_daily_quote",
            "entertainment",
            "Get the quote of the day.",
            [],
            ["What is the quote of the day?", "Give me today's quote."],
            "get the quote of the day",
            "daily quotes",
            {"quote": ("Small steps every day.", "Stay curious.")},
            "Today's quote is: {quote}",
        ),
        # knowledge
        _tool(
            "get_country_info",
            "knowledge",
            "Get facts about a country: capital, population and currency.",
            [_p("country", "str", "Name of the country.", COUNTRIES)],
            ["Tell me about {country}.", "What is the capital of {country}?"],
            "look up facts about {country}",
            "country facts",
            {"capital": ("Paris", "Tokyo", "Brasilia", "Ottawa", "Nairobi", "New Delhi", "Berlin", "Mexico City")},
            "The capital of {country} is {capital}.",
        ),
        _tool(
            "get_public_holidays",
            "knowledge",
            "List the public holidays of a country in a year.",
            [
                _p("country", "str", "Name of the country.", COUNTRIES),
                _p("year", "int", "The year.", (2023, 2024, 2025)),
            ],
            ["What are the public holidays in {country} in {year}?", "List the {year} holidays of {country}."],
            "list the {year} holidays of {country}",
            "public holidays",
            {"holidays": range(8, 16)},
            "{country} has {holidays} public holidays in {year}.",
        ),
        _tool(
            "get_local_time",
            "knowledge",
            "Get the local time in a city.",
            [city],
            ["What time is it in {city}?", "Tell me the local time in {city}."],
            "check the time in {city}",
            "local time",
            {"time": TIMES},
            "It is {time} in {city}.",
        ),
        # smart home
        _tool(
            "set_thermostat",
            "smart_home",
            "Set the thermostat of a room to a temperature.",
            [
                _p("temperature", "int", "Target temperature in celsius.", range(17, 26)),
                _opt("room", "str", "Which room.", ROOMS, "living room", "Do it in the {value}.", enum=True),
            ],
            ["Set the heating to {temperature} degrees.", "Change the thermostat to {temperature} degrees."],
            "set the thermostat to {temperature} degrees",
            "the thermostat",
            {"status": ("updated",)},
            "The thermostat is {status} to {temperature} degrees.",
        ),
        _tool(
            "turn_on_lights",
            "smart_home",
            "Turn on the lights in a room.",
            [
                _p("room", "str", "Which room.", ROOMS, enum=True),
                _opt("brightness", "int", "Brightness in percent.", (20, 50, 75), 100, "Set them to {value} percent."),
            ],
            ["Turn on the lights in the {room}.", "Switch the {room} lights on."],
            "turn on the lights in the {room}",
            "the lights",
            {"status": ("on",)},
            "The {room} lights are {status}.",
        ),
        # utilities
        _tool(
            "generate_password",
            "utilities",
            "Generate a random password.",
            [
                _p("length", "int", "Number of characters.", (8, 12, 16, 20)),
                _flag("include_symbols", "Use symbols.", True, "Do not use symbols."),
            ],
            ["Generate a password with {length} characters.", "I need a new {length} character password."],
            "generate a {length} character password",
            "passwords",
            {"password": ("k3Tr9xQ2", "Lm8pZ4wQ1vBn", "Xr5tGh2kLp9sWq3e")},
            "Your new password is {password}.",
        ),
        _tool(
            "shorten_url",
            "utilities",
            "Make a short link for a long URL.",
            [_p("url", "str", "The long URL.", URLS, label="link")],
            ["Shorten this link: {url}", "Make a short URL for {url}."],
            "shorten {url}",
            "short links",
            {"short_url": ("https://sho.rt/a1", "https://sho.rt/b2", "https://sho.rt/c3")},
            "Your short link is {short_url}.",
        ),
        _tool(
            "search_jobs",
            "work",
            "Search job offers by title and city.",
            [
                _p("title", "str", "Job title.", JOBS, label="job title"),
                city,
                _flag("remote", "Only remote jobs.", False, "Remote only, please."),
            ],
            ["Find {title} jobs in {city}.", "Are there any {title} openings in {city}?"],
            "search {title} jobs in {city}",
            "job search",
            {"openings": range(0, 40)},
            "There are {openings} {title} openings in {city}.",
        ),
        _tool(
            "search_books",
            "books",
            "Search books by author.",
            [
                _p("author", "str", "Name of the author.", AUTHORS),
                _opt("max_results", "int", "How many books to return.", (3, 10), 5, "Show {value} books."),
            ],
            ["Find books by {author}.", "What books did {author} write?"],
            "find books by {author}",
            "books",
            {"top_title": ("Emma", "Tom Sawyer", "Poirot Investigates", "War and Peace")},
            "A well known book by {author} is {top_title}.",
        ),
    )


CATALOG: tuple[SyntheticTool, ...] = _catalog()
_BY_NAME: dict[str, SyntheticTool] = {tool.name: tool for tool in CATALOG}


def tool_catalog() -> tuple[SyntheticTool, ...]:
    """All tools the generator knows, in a fixed order."""
    return CATALOG


def get_tool(name: str) -> SyntheticTool:
    if name not in _BY_NAME:
        raise KeyError(f"unknown synthetic tool {name!r}; valid: {sorted(_BY_NAME)}")
    return _BY_NAME[name]


def select_held_out_tools(held_out: float, seed: int) -> tuple[str, ...]:
    """Names of the tools kept out of training: ``held_out`` >= 1 is a count, 0 < ``held_out`` < 1 a fraction.

    The choice depends only on ``held_out`` and ``seed``, so train and test agree on it. At
    least two tools always stay in training (a task lists two tools or more).
    """
    if held_out < 0:
        raise ValueError(f"held-out tools must be >= 0, got {held_out}")
    if held_out == 0:
        return ()
    if held_out < 1:
        count = max(1, round(held_out * len(CATALOG)))
    else:
        if held_out != int(held_out):
            raise ValueError(f"a held-out count must be a whole number (or a fraction below 1), got {held_out}")
        count = int(held_out)
    if count > len(CATALOG) - 2:
        raise ValueError(f"cannot hold out {count} of {len(CATALOG)} tools: at least 2 must stay in training")
    names = [tool.name for tool in CATALOG]
    return tuple(sorted(random.Random(f"toolrl-synthetic:{seed}:held-out").sample(names, count)))


def parse_task_weights(spec: str | Mapping[str, float] | None) -> dict[str, float]:
    """Task-kind weights from a mapping or a ``"single=3,parallel=2"`` string; unnamed kinds get weight 0."""
    if spec is None or spec == "":
        return dict(DEFAULT_TASK_WEIGHTS)
    if isinstance(spec, str):
        items: dict[str, float] = {}
        for part in spec.split(","):
            if "=" not in part:
                raise ValueError(f"bad task weight {part.strip()!r} in {spec!r}: expected kind=weight")
            key, value = part.split("=", 1)
            try:
                items[key.strip()] = float(value)
            except ValueError:
                raise ValueError(
                    f"bad task weight {part.strip()!r} in {spec!r}: {value.strip()!r} is not a number"
                ) from None
        spec = items
    unknown = [key for key in spec if key not in TASK_KINDS]
    if unknown:
        raise ValueError(f"unknown synthetic task kind(s) {unknown}; valid: {list(TASK_KINDS)}")
    weights = {kind: float(spec.get(kind, 0.0)) for kind in TASK_KINDS}
    if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"task weights must be >= 0 with a positive sum, got {weights}")
    return weights


# ---------------------------------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticTask:
    """One task: the prompt's ingredients and the reference assistant turn, before rendering.

    ``history`` holds the rendered entries of the dialogue record (``<user> ... </user>``,
    earlier assistant turns, ``<obs> ... </obs>``); the user message joins them under the
    paper's header. ``calls`` is empty when the reference turn has no ``<tool_call>`` block.
    ``target_tools`` names the tools the task is about (called, asked about or refused);
    ``held_out`` says whether it involves a held-out tool; ``request`` is the latest user
    utterance. Being a frozen dataclass, ``dataclasses.replace(task, think=..., calls=...)``
    builds variants of the reference turn (imperfect transcripts, say).
    """

    kind: str
    variant: str
    tools: tuple[grammar.ToolSpec, ...]
    history: tuple[str, ...]
    think: str
    calls: tuple[dict[str, Any], ...] = ()
    response: str | None = None
    target_tools: tuple[str, ...] = ()
    held_out: bool = False
    request: str = ""

    @property
    def system_prompt(self) -> str:
        return grammar.render_system_prompt(self.tools)

    @property
    def user_message(self) -> str:
        return grammar.render_user_message(list(self.history))

    @property
    def output(self) -> str:
        return grammar.render_assistant_turn(self.think, list(self.calls) or None, self.response)

    def prompt(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": self.user_message}]

    def rl_row(self) -> dict[str, Any]:
        return {"prompt": self.prompt(), "ground_truth": self.output}

    def sft_row(self) -> dict[str, Any]:
        return {"prompt": self.prompt(), "completion": [{"role": "assistant", "content": self.output}]}


def render_rows(tasks: Sequence[SyntheticTask], kind: str = "rl") -> list[dict[str, Any]]:
    """TRL rows for ``tasks``: ``prompt`` + ``ground_truth`` (``kind="rl"``) or ``prompt`` + ``completion`` ("sft")."""
    if kind not in ("rl", "sft"):
        raise ValueError(f"unknown row kind {kind!r}; valid: ['rl', 'sft']")
    return [task.rl_row() if kind == "rl" else task.sft_row() for task in tasks]


def say(value: Any) -> str:
    """A value as a request or an answer writes it (lists as "a, b and c", floats without a trailing .0)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        words = [say(item) for item in value]
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return str(value)


def json_value(value: Any) -> str:
    """A value as the call will write it (strings quoted), so thoughts name the exact argument."""
    return json.dumps(value, ensure_ascii=False)


def _user(text: str) -> str:
    return f"{grammar.USER_OPEN} {text} {grammar.USER_CLOSE}"


def _lower_first(text: str) -> str:
    """Lower-case a request's first letter to join it after a connector ("Also, check ..."), but keep "I"."""
    if text.startswith(("I ", "I'")):
        return text
    return text[:1].lower() + text[1:]


def _join_names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}
GREETINGS = ("Hi!", "Hello there.", "Good morning!", "Hey, how are you?")
GREETING_REPLIES = ("Hello! How can I help you today?", "Hi! What can I do for you?")
THANKS = ("Thanks a lot!", "Thank you, that helps.", "Great, thanks!")
THANKS_REPLIES = ("You are welcome! Let me know if you need anything else.", "Glad I could help!")
CAPABILITY_QUESTIONS = ("What can you do?", "Which tasks can you help me with?")
VAGUE_REQUESTS = ("Can you help me with {topic}?", "I need some help with {topic}.")
CONNECTORS = ("Also, {}", "And {}", "Then {}")
FOLLOW_UPS = ("What about {value}?", "Now do the same for {value}.", "And for {value}?")
ACKS = ("Sure, I will {action} for you.", "On it! I am asking {tool} to {action}.")
SINGLE_THOUGHTS = (
    "The user wants to {action}. The {tool} tool does this, so I will call it with {args}.",
    "To {action}, I should use {tool}. I will call it with {args}.",
    "{tool} can {action}. The request gives {args}, so I will call it.",
)
PARALLEL_THOUGHTS = (
    "The user asks for {count} things. I will call {calls} at the same time.",
    "There are {count} separate requests here, so I will make {count} calls in parallel: {calls}.",
)
REPEAT_THOUGHTS = (
    "The user needs {tool} {count} times, with {values}. I will make {count} calls in parallel.",
    "{tool} handles one {noun} per call, so I will call it {count} times: for {values}.",
)


class _NoCandidate(Exception):
    """A task kind cannot be built from the tools of this split (e.g. too few held-out tools); draw another."""


def _pick(rng: random.Random, items: Sequence[Any]) -> Any:
    if not items:
        raise _NoCandidate
    return rng.choice(items)


class SyntheticGenerator:
    """Seeded task generator. ``tasks("train", n)`` never lists a held-out tool; ``tasks("test", n)`` targets them.

    Without held-out tools both splits draw from the whole catalogue (from separate random
    streams, so a split does not depend on the other's size). With held-out tools, every
    test task lists at least one of them and, when it calls or asks about a tool, that tool
    is a held-out one.
    """

    def __init__(
        self,
        seed: int = 0,
        held_out_tools: float = 0,
        task_weights: str | Mapping[str, float] | None = None,
        max_tools_per_prompt: int = 5,
    ) -> None:
        if max_tools_per_prompt < 2:
            raise ValueError(
                f"max_tools_per_prompt must be >= 2 (parallel tasks list two tools), got {max_tools_per_prompt}"
            )
        self.seed = seed
        self.max_tools = max_tools_per_prompt
        self.weights = parse_task_weights(task_weights)
        self.held_out: tuple[str, ...] = select_held_out_tools(held_out_tools, seed)
        self.train_tools = tuple(tool for tool in CATALOG if tool.name not in self.held_out)
        self.test_targets = tuple(get_tool(name) for name in self.held_out) or CATALOG

    # -- public API --------------------------------------------------------------------------------------------------

    def tasks(self, split: str, n: int, exclude: Sequence[SyntheticTask] = ()) -> list[SyntheticTask]:
        """``n`` tasks of ``split`` ("train" or "test"), skipping any whose prompt and output appear in ``exclude``."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; valid: ['train', 'test']")
        rng = random.Random(f"toolrl-synthetic:{self.seed}:{split}")
        seen = {_task_key(task) for task in exclude}
        kinds = [kind for kind in TASK_KINDS if self.weights[kind] > 0]
        weights = [self.weights[kind] for kind in kinds]
        out: list[SyntheticTask] = []
        attempts = 0
        while len(out) < n:
            attempts += 1
            if attempts > 50 * n + 100:
                raise RuntimeError(f"could not generate {n} distinct {split} tasks in {attempts - 1} attempts")
            kind = rng.choices(kinds, weights)[0]
            try:
                task = getattr(self, f"_make_{kind}")(rng, split)
            except _NoCandidate:
                continue
            if seen and _task_key(task) in seen:
                continue
            out.append(task)
        return out

    def splits(self, train_size: int, test_size: int) -> dict[str, list[SyntheticTask]]:
        """Train and test tasks; test tasks that duplicate a train task exactly are redrawn."""
        train = self.tasks("train", train_size)
        return {"train": train, "test": self.tasks("test", test_size, exclude=train)}

    # -- sampling helpers --------------------------------------------------------------------------------------------

    def _pool(self, split: str) -> tuple[SyntheticTool, ...]:
        """Tools a task of ``split`` may call or ask about."""
        return self.train_tools if split == "train" else self.test_targets

    def _targets(self, rng: random.Random, split: str, count: int, exclude: Sequence[str] = ()) -> list[SyntheticTool]:
        """``count`` distinct target tools; in a held-out test split the first one is always held out."""
        if split == "train" or not self.held_out:
            pool = [tool for tool in (self.train_tools if split == "train" else CATALOG) if tool.name not in exclude]
            if len(pool) < count:
                raise _NoCandidate
            return rng.sample(pool, count)
        first = _pick(rng, [tool for tool in self.test_targets if tool.name not in exclude])
        rest = [tool for tool in CATALOG if tool.name not in exclude and tool.name != first.name]
        return [first, *rng.sample(rest, count - 1)]

    def _tool_list(
        self, rng: random.Random, split: str, targets: Sequence[SyntheticTool], banned_domains: Sequence[str] = ()
    ) -> tuple[grammar.ToolSpec, ...]:
        """Targets plus distractors (often one from the same domain), shuffled; held-out tools stay out of train."""
        pool = self.train_tools if split == "train" else CATALOG
        chosen = list(targets)
        names = {tool.name for tool in chosen}
        candidates = [tool for tool in pool if tool.name not in names and tool.domain not in banned_domains]
        if split == "test" and self.held_out and not any(tool.name in self.held_out for tool in chosen):
            forced = _pick(rng, [tool for tool in self.test_targets if tool.domain not in banned_domains])
            chosen.append(forced)
            candidates = [tool for tool in candidates if tool.name != forced.name]
        total = rng.randint(max(2, len(chosen)), max(self.max_tools, len(chosen)))
        siblings = [tool for tool in candidates if any(tool.domain == target.domain for target in targets)]
        if siblings and len(chosen) < total and rng.random() < 0.5:
            sibling = rng.choice(siblings)
            chosen.append(sibling)
            candidates = [tool for tool in candidates if tool.name != sibling.name]
        chosen.extend(rng.sample(candidates, min(len(candidates), total - len(chosen))))
        rng.shuffle(chosen)
        return tuple(tool.spec() for tool in chosen)

    def _sample_args(self, rng: random.Random, tool: SyntheticTool) -> tuple[dict[str, Any], list[str]]:
        """Typed arguments (required ones, plus optional ones the request mentions) and the mention sentences."""
        args: dict[str, Any] = {}
        mentions: list[str] = []
        for param in tool.params:
            if not param.required and rng.random() >= OPTIONAL_MENTION_RATE:
                continue
            value = self._sample_value(rng, param, args)
            args[param.name] = value
            if not param.required:
                mentions.append(param.mention.format(value=say(value)))
        return args, mentions

    @staticmethod
    def _sample_value(rng: random.Random, param: ParamSpec, args: Mapping[str, Any]) -> Any:
        if param.type == "bool" and not param.required:
            return not param.default
        pool = [v for v in param.pool if param.required or v != param.default]
        if param.distinct_from and param.distinct_from in args:
            pool = [v for v in pool if v != args[param.distinct_from]]
        if param.type.startswith("List["):
            return rng.sample(pool, rng.randint(2, min(3, len(pool))))
        return rng.choice(pool)

    @staticmethod
    def _alternatives(tool: SyntheticTool, key: ParamSpec, args: Mapping[str, Any]) -> list[Any]:
        """Values ``key`` may take instead of its current one without clashing with a parameter it must differ from."""
        clashing = {p.name for p in tool.params if p.distinct_from == key.name} | {key.distinct_from}
        taken = [args[name] for name in clashing if name in args]
        return [v for v in key.pool if v != args.get(key.name) and v not in taken]

    @staticmethod
    def _text_values(tool: SyntheticTool, args: Mapping[str, Any]) -> dict[str, str]:
        return {param.name: say(args[param.name]) for param in tool.params if param.name in args}

    def _request(
        self, rng: random.Random, tool: SyntheticTool, args: Mapping[str, Any], mentions: Sequence[str]
    ) -> str:
        text = rng.choice(tool.requests).format(**self._text_values(tool, args))
        return " ".join([text, *mentions])

    def _action(self, tool: SyntheticTool, args: Mapping[str, Any]) -> str:
        return tool.action.format(**self._text_values(tool, args))

    @staticmethod
    def _arg_phrase(args: Mapping[str, Any]) -> str:
        if not args:
            return "no parameters"
        return _join_names([f"{name} as {json_value(value)}" for name, value in args.items()])

    def _single_think(self, rng: random.Random, tool: SyntheticTool, args: Mapping[str, Any]) -> str:
        template = rng.choice(SINGLE_THOUGHTS)
        return template.format(action=self._action(tool, args), tool=tool.name, args=self._arg_phrase(args))

    @staticmethod
    def _result(rng: random.Random, tool: SyntheticTool) -> dict[str, Any]:
        return {key: rng.choice(values) for key, values in tool.results}

    def _summary(self, tool: SyntheticTool, args: Mapping[str, Any], result: Mapping[str, Any]) -> str:
        values = self._text_values(tool, args)
        values.update({key: say(value) for key, value in result.items()})
        return tool.summary.format(**values)

    @staticmethod
    def _call(tool: SyntheticTool, args: Mapping[str, Any]) -> dict[str, Any]:
        return {"name": tool.name, "parameters": dict(args)}

    @staticmethod
    def _join_requests(rng: random.Random, requests: Sequence[str]) -> str:
        return requests[0] + "".join(" " + rng.choice(CONNECTORS).format(_lower_first(r)) for r in requests[1:])

    def _task(
        self,
        kind: str,
        variant: str,
        tools: tuple[grammar.ToolSpec, ...],
        history: Sequence[str],
        think: str,
        calls: Sequence[dict[str, Any]] = (),
        response: str | None = None,
        targets: Sequence[SyntheticTool] = (),
        request: str = "",
    ) -> SyntheticTask:
        names = tuple(tool.name for tool in targets)
        involved = [spec.name for spec in tools] + list(names)
        return SyntheticTask(
            kind=kind,
            variant=variant,
            tools=tools,
            history=tuple(history),
            think=think,
            calls=tuple(calls),
            response=response,
            target_tools=names,
            held_out=any(name in self.held_out for name in involved),
            request=request,
        )

    # -- task kinds --------------------------------------------------------------------------------------------------

    def _make_single(self, rng: random.Random, split: str) -> SyntheticTask:
        (tool,) = self._targets(rng, split, 1)
        args, mentions = self._sample_args(rng, tool)
        request = self._request(rng, tool, args, mentions)
        tools = self._tool_list(rng, split, [tool])
        think = self._single_think(rng, tool, args)
        return self._task(
            "single", "single", tools, [_user(request)], think, [self._call(tool, args)], None, [tool], request
        )

    def _make_parallel(self, rng: random.Random, split: str) -> SyntheticTask:
        if rng.random() < 0.4:
            return self._make_repeat(rng, split)
        count = rng.choice((2, 2, 3))
        targets = self._targets(rng, split, count)
        arg_sets = [self._sample_args(rng, tool) for tool in targets]
        request = self._join_requests(
            rng, [self._request(rng, t, a, m) for t, (a, m) in zip(targets, arg_sets, strict=True)]
        )
        calls = [self._call(tool, args) for tool, (args, _) in zip(targets, arg_sets, strict=True)]
        call_words = _join_names(
            [f"{tool.name} to {self._action(tool, args)}" for tool, (args, _) in zip(targets, arg_sets, strict=True)]
        )
        think = rng.choice(PARALLEL_THOUGHTS).format(count=NUMBER_WORDS[count], calls=call_words)
        tools = self._tool_list(rng, split, targets)
        return self._task("parallel", "different_tools", tools, [_user(request)], think, calls, None, targets, request)

    def _make_repeat(self, rng: random.Random, split: str) -> SyntheticTask:
        """The same tool called two or three times, varying its first required parameter.

        Optional parameters the request mentions go with the first call only, as the first
        sentence states them.
        """
        tool = _pick(rng, [t for t in self._pool(split) if t.required and len(t.required[0].pool) > 2])
        key = tool.required[0]
        args, mentions = self._sample_args(rng, tool)
        required = {name: value for name, value in args.items() if name in {p.name for p in tool.required}}
        others = self._alternatives(tool, key, args)
        extra = rng.sample(others, min(len(others), rng.choice((1, 1, 2))))
        if not extra:
            raise _NoCandidate
        arg_sets = [args] + [{**required, key.name: value} for value in extra]
        requests = [self._request(rng, tool, a, mentions if i == 0 else []) for i, a in enumerate(arg_sets)]
        calls = [self._call(tool, a) for a in arg_sets]
        values = [args[key.name], *extra]
        think = rng.choice(REPEAT_THOUGHTS).format(
            tool=tool.name,
            count=NUMBER_WORDS[len(calls)],
            noun=key.noun,
            values=_join_names([json_value(v) for v in values]),
        )
        tools = self._tool_list(rng, split, [tool])
        request = self._join_requests(rng, requests)
        return self._task("parallel", "same_tool", tools, [_user(request)], think, calls, None, [tool], request)

    def _make_no_tool(self, rng: random.Random, split: str) -> SyntheticTask:
        variant = rng.choice(("greeting", "capability", "clarify", "clarify", "unavailable", "unavailable"))
        if variant == "greeting":
            tools = self._tool_list(rng, split, [])
            request = rng.choice(GREETINGS)
            think = "The user is just greeting me. No tool is needed, so I will reply directly."
            return self._task(
                "no_tool",
                variant,
                tools,
                [_user(request)],
                think,
                response=rng.choice(GREETING_REPLIES),
                request=request,
            )
        if variant == "capability":
            tools = self._tool_list(rng, split, [])
            topics = list(dict.fromkeys(get_tool(spec.name).topic for spec in tools))
            request = rng.choice(CAPABILITY_QUESTIONS)
            think = "The user asks what I can do. I will describe the available tools instead of calling one."
            response = f"I can help with {_join_names(topics)}."
            return self._task("no_tool", variant, tools, [_user(request)], think, response=response, request=request)
        if variant == "clarify":
            (tool,) = self._targets(rng, split, 1, exclude=[t.name for t in CATALOG if not t.required])
            request = rng.choice(VAGUE_REQUESTS).format(topic=tool.topic)
            missing = _join_names([f"the {param.noun}" for param in tool.required])
            verb = "is" if len(tool.required) == 1 else "are"
            think = (
                f"The user wants help with {tool.topic}, which {tool.name} handles, but {missing} {verb} missing. "
                "I should ask before calling it."
            )
            response = f"Sure. Could you tell me {missing}?"
            tools = self._tool_list(rng, split, [tool])
            return self._task(
                "no_tool", variant, tools, [_user(request)], think, response=response, targets=[tool], request=request
            )
        # unavailable: the request needs a tool that the prompt does not list (nor any tool of its domain)
        (tool,) = self._targets(rng, split, 1)
        args, mentions = self._sample_args(rng, tool)
        request = self._request(rng, tool, args, mentions)
        tools = self._tool_list(rng, split, [], banned_domains=[tool.domain])
        think = (
            f"The user wants to {self._action(tool, args)}, but none of the available tools can do that. "
            "I will say so instead of calling a tool."
        )
        response = f"Sorry, I cannot help with {tool.topic} because none of my tools support it."
        return self._task(
            "no_tool", variant, tools, [_user(request)], think, response=response, targets=[tool], request=request
        )

    def _make_call_and_response(self, rng: random.Random, split: str) -> SyntheticTask:
        (tool,) = self._targets(rng, split, 1)
        args, mentions = self._sample_args(rng, tool)
        request = self._request(rng, tool, args, mentions)
        if rng.random() < 0.4:
            request = f"{rng.choice(GREETINGS[:3])} {request}"
        tools = self._tool_list(rng, split, [tool])
        think = self._single_think(rng, tool, args) + " I will also tell the user what I am doing."
        response = rng.choice(ACKS).format(action=self._action(tool, args), tool=tool.name)
        calls = [self._call(tool, args)]
        return self._task("call_and_response", "ack", tools, [_user(request)], think, calls, response, [tool], request)

    def _make_multi_turn(self, rng: random.Random, split: str) -> SyntheticTask:
        """A dialogue with an earlier call and its ``<obs>``; the reference turn answers, calls again or replies.

        In a held-out test split the tool of the reference turn's call is the held-out one.
        """
        variant = rng.choice(("summarize", "summarize", "follow_up", "same_again", "thanks"))
        if variant == "follow_up":
            current, earlier = self._targets(rng, split, 2)
        elif variant == "same_again":
            swappable = [
                t
                for t in self._pool(split)
                if t.required and t.required[0].type == "str" and len(t.required[0].pool) > 2
            ]
            current = earlier = _pick(rng, swappable)
        else:
            (earlier,) = self._targets(rng, split, 1)
            current = earlier
        args, mentions = self._sample_args(rng, earlier)
        request = self._request(rng, earlier, args, mentions)
        result = self._result(rng, earlier)
        call_turn = grammar.render_assistant_turn(self._single_think(rng, earlier, args), [self._call(earlier, args)])
        observation = grammar.render_observation([{"name": earlier.name, "results": result}])
        history = [_user(request), f"{call_turn}\n{observation}"]
        targets = [current] if current is earlier else [current, earlier]
        tools = self._tool_list(rng, split, targets)
        summary = self._summary(earlier, args, result)
        if variant == "summarize":
            think = f"{earlier.name} returned the result. I will share it with the user in a short answer."
            return self._task(
                "multi_turn", variant, tools, history, think, response=summary, targets=targets, request=request
            )
        history.append(
            grammar.render_assistant_turn("I should directly respond to the user with the result.", None, summary)
        )
        if variant == "thanks":
            request2 = rng.choice(THANKS)
            history.append(_user(request2))
            think = "The user is thanking me for the answer. No tool is needed now."
            reply = rng.choice(THANKS_REPLIES)
            return self._task(
                "multi_turn", variant, tools, history, think, response=reply, targets=targets, request=request2
            )
        if variant == "same_again":
            key = earlier.required[0]
            value = _pick(rng, self._alternatives(earlier, key, args))
            request2 = rng.choice(FOLLOW_UPS).format(value=say(value))
            args2 = {**args, key.name: value}
            think = (
                f"The user wants the same {earlier.name} request as before, but with the {key.noun} {json_value(value)}. "
                f"I will call {earlier.name} again with {self._arg_phrase(args2)}."
            )
        else:
            args2, mentions2 = self._sample_args(rng, current)
            request2 = self._request(rng, current, args2, mentions2)
            think = self._single_think(rng, current, args2)
        history.append(_user(request2))
        calls = [self._call(current, args2)]
        return self._task("multi_turn", variant, tools, history, think, calls, None, targets, request2)


def _task_key(task: SyntheticTask) -> tuple[str, str, str]:
    return (task.system_prompt, task.user_message, task.output)


def generate_tasks(
    train_size: int,
    test_size: int,
    *,
    seed: int = 0,
    held_out_tools: float = 0,
    task_weights: str | Mapping[str, float] | None = None,
    max_tools_per_prompt: int = 5,
) -> dict[str, list[SyntheticTask]]:
    """Train and test tasks of a :class:`SyntheticGenerator`; the convenience entry point of the data layer."""
    generator = SyntheticGenerator(seed, held_out_tools, task_weights, max_tools_per_prompt)
    return generator.splits(train_size, test_size)


__all__ = [
    "CATALOG",
    "DEFAULT_TASK_WEIGHTS",
    "TASK_KINDS",
    "ParamSpec",
    "SyntheticGenerator",
    "SyntheticTask",
    "SyntheticTool",
    "generate_tasks",
    "get_tool",
    "parse_task_weights",
    "render_rows",
    "say",
    "select_held_out_tools",
    "tool_catalog",
]
