"""Names, numbers and habits of the simulated people, workers and establishments.

Every id comes from one seeded generator in a fixed order and is checked for
uniqueness here, so two runs with one seed agree byte for byte and no two workers or
accounts ever share an id (the domain would refuse the second one).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from itertools import accumulate
from typing import Final, TypeVar

T = TypeVar("T")

# (city, weight, commercial-registration prefix): the bigger cities host more files.
CITIES: Final[tuple[tuple[str, int, str], ...]] = (
    ("Riyadh", 30, "1010"), ("Jeddah", 20, "4030"), ("Makkah", 6, "4031"),
    ("Madinah", 5, "4650"), ("Dammam", 9, "2050"), ("Khobar", 5, "2051"),
    ("Jubail", 3, "2055"), ("Al Ahsa", 3, "2250"), ("Taif", 3, "4032"),
    ("Tabuk", 2, "3550"), ("Buraydah", 3, "1131"), ("Abha", 2, "5850"),
    ("Khamis Mushait", 2, "5855"), ("Hail", 2, "3350"), ("Jazan", 2, "5900"),
    ("Najran", 1, "5950"), ("Yanbu", 1, "4700"), ("Al Kharj", 1, "1011"),
)
_CITY_CUM: Final = list(accumulate(c[1] for c in CITIES))

# The activity codes of domain/data/nitaqat_thresholds.json, with a rough share of
# files and the professions their workers hold.
ACTIVITIES: Final[dict[str, tuple[int, tuple[str, ...]]]] = {
    "construction": (22, ("laborer", "mason", "carpenter", "electrician", "plumber",
                          "steel_fixer", "painter", "heavy_equipment_operator")),
    "retail_trade": (20, ("sales_specialist", "cashier", "storekeeper", "merchandiser")),
    "wholesale_trade": (6, ("storekeeper", "sales_representative", "driver")),
    "manufacturing": (7, ("machine_operator", "technician", "welder", "quality_inspector")),
    "hospitality": (9, ("cook", "waiter", "barista", "housekeeper", "receptionist")),
    "healthcare": (5, ("nurse", "physician", "pharmacist", "lab_technician")),
    "education": (4, ("teacher", "teaching_assistant", "school_driver")),
    "transport_logistics": (6, ("heavy_truck_driver", "driver", "dispatcher", "mechanic")),
    "information_technology": (3, ("software_developer", "network_engineer",
                                   "it_support_technician", "data_analyst")),
    "agriculture": (4, ("farm_worker", "shepherd", "irrigation_technician")),
    "security_services": (4, ("security_guard", "security_supervisor")),
    "cleaning_services": (10, ("cleaner", "cleaning_supervisor", "laborer")),
}
_ACTIVITY_NAMES: Final = list(ACTIVITIES)
_ACTIVITY_CUM: Final = list(accumulate(ACTIVITIES[a][0] for a in _ACTIVITY_NAMES))
SAUDI_PROFESSIONS: Final = ("accountant", "hr_specialist", "sales_manager", "supervisor",
                            "administrative_assistant", "customer_service_agent",
                            "engineer", "general_manager", "government_relations_officer")

# Where the kingdom's expatriate workers come from, roughly by number.
NATIONALITIES: Final[tuple[tuple[str, int], ...]] = (
    ("IND", 25), ("BGD", 16), ("PAK", 13), ("EGY", 12), ("PHL", 7), ("NPL", 6),
    ("YEM", 6), ("SDN", 5), ("IDN", 4), ("LKA", 3), ("JOR", 2), ("SYR", 1),
)
_NATIONALITY_CUM: Final = list(accumulate(n[1] for n in NATIONALITIES))
GCC: Final = ("BHR", "KWT", "ARE", "OMN", "QAT")

_NAME_WORDS: Final = ("Al Noor", "Al Amal", "Al Waha", "Najd", "Al Jazeera", "Al Safwa",
                      "Al Ufuq", "Tihama", "Al Bayan", "Al Manar", "Al Yamama", "Sahara",
                      "Al Fajr", "Al Rawabi", "Al Muntazah", "Al Khaleej", "Al Qimma",
                      "Al Hilal", "Al Nakheel", "Al Sharq", "Asateer", "Al Tamayuz")
_NAME_KINDS: Final = ("Est.", "Co.", "Trading Est.", "Contracting Co.", "Services Co.",
                      "Group", "Factory", "Centre")
_MAIL_DOMAINS: Final = ("gmail.com", "hotmail.com", "outlook.com", "yahoo.com",
                        "icloud.com", "outlook.sa")
_THIEF_MAIL_DOMAINS: Final = ("proton.me", "tutanota.com", "mail.ru", "yandex.com")

# Saudi consumer and business ISPs (owners, delegates, agents) and elsewhere (thieves).
_HOME_PREFIXES: Final = ("5.42", "31.166", "37.106", "46.152", "51.36", "78.93", "91.72",
                         "94.97", "176.224", "188.48", "212.26", "2.88", "95.186")
_FOREIGN_PREFIXES: Final = ("102.89", "103.152", "185.220", "45.141", "196.74", "41.90",
                            "154.73", "197.210")
USER_AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Qiwa/3.8.1 (iPhone; iOS 17.4)",
    "Qiwa/3.8.0 (Android 14; SM-A546E)",
)
API_AGENT: Final = "sijil-hr-connector/2.4 (+payroll)"


def weighted(rng: random.Random, items: Sequence[T], cumulative: Sequence[float]) -> T:
    """random.choices for one item, without rebuilding the cumulative weights each time
    (the simulator draws millions)."""
    return items[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]


def between(rng: random.Random, low: int, high: int) -> int:
    """random.randint's range, at a fraction of its cost."""
    return low + int(rng.random() * (high - low + 1))


class Ids:
    """Unique, well-formed identifiers drawn from the simulation's generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def _fresh(self, make: str, digits: int) -> str:
        while True:
            value = f"{make}{int(self._rng.random() * 10 ** digits):0{digits}d}"
            if value not in self._used:
                self._used.add(value)
                return value

    def national_id(self) -> str:
        return self._fresh("1", 9)

    def iqama(self) -> str:
        return self._fresh("2", 9)

    def border_number(self) -> str:
        return self._fresh(self._rng.choice("34"), 9)

    def file_number(self, office: int) -> str:
        return self._fresh(f"{office}-", 6)

    def commercial_registration(self, prefix: str) -> str:
        return self._fresh(prefix, 6)

    def device(self) -> str:
        while True:
            value = f"dev-{self._rng.getrandbits(48):012x}"
            if value not in self._used:
                self._used.add(value)
                return value


def city(rng: random.Random) -> tuple[int, str, str]:
    """(labour office number, city, commercial-registration prefix)."""
    index = weighted(rng, range(len(CITIES)), _CITY_CUM)
    name, _, prefix = CITIES[index]
    return index + 1, name, prefix


def activity(rng: random.Random) -> str:
    return weighted(rng, _ACTIVITY_NAMES, _ACTIVITY_CUM)


def nationality(rng: random.Random) -> str:
    return weighted(rng, NATIONALITIES, _NATIONALITY_CUM)[0]


def establishment_name(rng: random.Random) -> str:
    return f"{rng.choice(_NAME_WORDS)} {rng.choice(_NAME_KINDS)}"


def email(rng: random.Random, account_id: str) -> str:
    return f"u{account_id[-7:]}.{rng.randrange(100)}@{rng.choice(_MAIL_DOMAINS)}"


def thief_email(rng: random.Random) -> str:
    local = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
    return f"{local}@{rng.choice(_THIEF_MAIL_DOMAINS)}"


def home_ip(rng: random.Random) -> str:
    return f"{rng.choice(_HOME_PREFIXES)}.{between(rng, 0, 255)}.{between(rng, 1, 254)}"


def foreign_ip(rng: random.Random) -> str:
    return f"{rng.choice(_FOREIGN_PREFIXES)}.{between(rng, 0, 255)}.{between(rng, 1, 254)}"


def saudi_wage(rng: random.Random) -> tuple[int, bool]:
    """(monthly wage, part time): most above the 4,000 SAR that counts a Saudi fully."""
    roll = rng.random()
    if roll < 0.04:
        return between(rng, 40, 79) * 50, True
    if roll < 0.12:
        return between(rng, 60, 79) * 50, False
    return int(rng.lognormvariate(8.9, 0.45)) // 50 * 50 + 4000, False


def expat_wage(rng: random.Random) -> int:
    return max(1000, int(rng.lognormvariate(7.6, 0.5)) // 50 * 50)
