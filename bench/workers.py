"""Deterministic generator for the ``workers_500k.csv`` benchmark fixture.

Realistic staffing data, 15 columns, pure stdlib (``random.Random(seed)``):
the same ``rows`` and ``seed`` give the same bytes on every run and machine.
The stream is row-by-row from one RNG, so the first N rows of a bigger file
are exactly the N-row file (handy for small test fixtures).

CSV dialect (what the readers must cope with):

* comma separated, ``\\n`` line endings, header row, UTF-8 (a few names have
  accents: José, Zoë, ...);
* minimal quoting: ``zip`` is written unquoted with its leading zeros
  (``02134``), so a type-inferring reader turns it into an integer unless told
  ``zip`` is a string;
* ``skills`` always contains commas, so it is always quoted;
* ``notes`` is empty (an empty, unquoted field) in about half of the rows,
  sometimes contains commas or doubled quotes (``""``), and in about 1.5% of
  rows a newline inside a quoted field.  pyarrow needs
  ``ParseOptions(newlines_in_values=True)`` for that (see
  :func:`pyarrow_csv_options`).

Usage::

    from bench.workers import ensure_workers_csv
    path = ensure_workers_csv()            # <repo>/.cache/fixtures/workers_500k.csv

    python -m bench.workers --rows 500000 --out /tmp/workers_500k.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import random
import sys
import tempfile
import time
import unicodedata
from bisect import bisect
from itertools import accumulate
from pathlib import Path
from typing import Iterator

__all__ = [
    "COLUMNS",
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "GENERATOR_VERSION",
    "default_cache_dir",
    "ensure_workers_csv",
    "fixture_name",
    "iter_rows",
    "pyarrow_csv_options",
    "write_workers_csv",
]

# Bump whenever the output bytes change, so cached fixtures are regenerated.
GENERATOR_VERSION = 1
DEFAULT_ROWS = 500_000
DEFAULT_SEED = 20240611
CHUNK_ROWS = 20_000
FIRST_WORKER_ID = 100_001

REPO_ROOT = Path(__file__).resolve().parent.parent

COLUMNS = [
    "worker_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "role",
    "state",
    "city",
    "zip",
    "hourly_rate",
    "years_experience",
    "hire_date",
    "active",
    "skills",
    "notes",
]

# --------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------

_FIRST_NAMES = """
James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William
Barbara Richard Susan Joseph Jessica Thomas Sarah Christopher Karen Charles
Lisa Daniel Nancy Matthew Betty Anthony Sandra Mark Margaret Donald Ashley
Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin
Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Rebecca Jason
Sharon Edward Laura Jeffrey Cynthia Ryan Dorothy Jacob Amy Gary Kathleen
Nicholas Angela Eric Shirley Jonathan Brenda Stephen Emma Larry Anna Justin
Pamela Scott Nicole Brandon Samantha Benjamin Katherine Samuel Christine Gregory
Helen Alexander Debra Patrick Rachel Frank Carolyn Raymond Janet Jack Maria
Dennis Olivia Jerry Heather Tyler Diane Aaron Julie Jose Joyce Adam Victoria
Nathan Ruth Henry Virginia Zachary Lauren Douglas Kelly Peter Christina Kyle
Joan Noah Evelyn Ethan Judith Jeremy Andrea Walter Hannah Christian Megan
Keith Cheryl Roger Jacqueline Terry Martha Austin Madison Sean Teresa Gerald
Gloria Carl Sara Harold Janice Dylan Ann Arthur Kathryn Lawrence Abigail Jordan
Sophia Jesse Frances Bryan Jean Billy Alice Bruce Judy Gabriel Isabella Joe
Julia Logan Grace Alan Amber Juan Denise Albert Danielle Willie Marilyn Elijah
Beverly Wayne Charlotte Randy Natalie Vincent Theresa Mason Diana Roy Brittany
Ralph Doris Bobby Kayla Russell Alexis Bradley Lori Philip Marie
Wei Mei Hiroshi Yuki Priya Rahul Fatima Omar Aisha Mohammed Ngozi Kwame
José Zoë Chloé André Renée Björn Siobhán Mateo Ximena Thảo
""".split()

_LAST_NAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee
Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young
Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall
Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker
Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez
Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes
Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell
Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales
Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham
Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis
Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez
McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker
Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw
Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd
Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson
Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kowalski Nowak
Wiśniewski Novak O'Brien O'Connor Okafor Mensah Yamamoto Tanaka Singh Sharma
Khan Ali Hassan Müller Schäfer Núñez Peña Ibáñez Da Silva Van Der Berg
""".split()

_EMAIL_DOMAINS = [
    ("gmail.com", 38),
    ("yahoo.com", 14),
    ("outlook.com", 11),
    ("hotmail.com", 8),
    ("icloud.com", 7),
    ("aol.com", 3),
    ("comcast.net", 3),
    ("staffmail.example.com", 10),
    ("proton.me", 2),
    ("att.net", 4),
]

# (role, base hourly rate in USD, weight)
_ROLES = [
    ("Warehouse Associate", 17.50, 16),
    ("Forklift Operator", 20.25, 9),
    ("Picker/Packer", 16.75, 10),
    ("Machine Operator", 19.00, 7),
    ("Assembler", 17.25, 7),
    ("Quality Inspector", 21.50, 4),
    ("Shipping Clerk", 18.25, 5),
    ("Customer Service Rep", 18.75, 6),
    ("Administrative Assistant", 20.50, 5),
    ("Receptionist", 17.00, 3),
    ("Data Entry Clerk", 17.75, 4),
    ("Registered Nurse", 42.00, 3),
    ("Certified Nursing Assistant", 19.50, 4),
    ("Medical Assistant", 20.00, 3),
    ("Electrician", 32.50, 2),
    ("Welder", 26.00, 3),
    ("CNC Machinist", 27.25, 2),
    ("Truck Driver (CDL-A)", 28.50, 3),
    ("Janitor", 15.75, 3),
    ("Software QA Tester", 35.00, 1),
]

# (state, city, first zip, last zip, area codes, weight)
# IL is the most common state (~20%); the New England / NJ rows give
# zip codes with leading zeros (~20% of rows).
_LOCATIONS = [
    ("IL", "Chicago", 60601, 60661, (312, 773, 872), 90),
    ("IL", "Aurora", 60502, 60506, (630, 331), 12),
    ("IL", "Naperville", 60540, 60567, (630, 331), 10),
    ("IL", "Joliet", 60431, 60436, (815, 779), 10),
    ("IL", "Rockford", 61101, 61114, (815, 779), 9),
    ("IL", "Springfield", 62701, 62712, (217,), 7),
    ("IL", "Peoria", 61602, 61615, (309,), 6),
    ("IL", "Elgin", 60120, 60124, (847, 224), 6),
    ("MA", "Boston", 2108, 2137, (617, 857), 25),
    ("MA", "Worcester", 1601, 1610, (508, 774), 8),
    ("MA", "Springfield", 1101, 1109, (413,), 5),
    ("MA", "Lowell", 1850, 1854, (978, 351), 4),
    ("CT", "Hartford", 6101, 6120, (860, 959), 8),
    ("CT", "New Haven", 6510, 6519, (203, 475), 7),
    ("CT", "Bridgeport", 6601, 6610, (203, 475), 5),
    ("NJ", "Newark", 7101, 7199, (973, 862), 14),
    ("NJ", "Jersey City", 7302, 7311, (201, 551), 9),
    ("NJ", "Paterson", 7501, 7514, (973, 862), 5),
    ("NJ", "Trenton", 8601, 8650, (609, 640), 5),
    ("NH", "Manchester", 3101, 3111, (603,), 4),
    ("ME", "Portland", 4101, 4112, (207,), 3),
    ("RI", "Providence", 2901, 2912, (401,), 5),
    ("VT", "Burlington", 5401, 5408, (802,), 2),
    ("NY", "New York", 10001, 10282, (212, 646, 917), 30),
    ("NY", "Buffalo", 14201, 14227, (716,), 8),
    ("NY", "Rochester", 14604, 14627, (585,), 6),
    ("CA", "Los Angeles", 90001, 90089, (213, 323, 310), 28),
    ("CA", "San Jose", 95110, 95139, (408, 669), 10),
    ("CA", "Fresno", 93650, 93740, (559,), 6),
    ("TX", "Houston", 77001, 77099, (713, 281, 832), 24),
    ("TX", "Dallas", 75201, 75254, (214, 469, 972), 18),
    ("TX", "San Antonio", 78201, 78266, (210, 726), 12),
    ("FL", "Miami", 33101, 33199, (305, 786), 14),
    ("FL", "Orlando", 32801, 32839, (407, 321), 10),
    ("FL", "Tampa", 33601, 33647, (813, 656), 9),
    ("GA", "Atlanta", 30301, 30350, (404, 470, 678), 16),
    ("OH", "Columbus", 43201, 43235, (614, 380), 10),
    ("OH", "Cleveland", 44101, 44135, (216,), 8),
    ("MI", "Detroit", 48201, 48243, (313,), 10),
    ("MI", "Grand Rapids", 49501, 49548, (616,), 5),
    ("PA", "Philadelphia", 19102, 19154, (215, 267, 445), 14),
    ("PA", "Pittsburgh", 15201, 15244, (412, 878), 8),
    ("WI", "Milwaukee", 53202, 53233, (414,), 8),
    ("IN", "Indianapolis", 46201, 46260, (317, 463), 10),
    ("IN", "Gary", 46401, 46411, (219,), 3),
    ("MN", "Minneapolis", 55401, 55488, (612,), 7),
    ("MO", "St. Louis", 63101, 63147, (314, 557), 8),
    ("MO", "Kansas City", 64101, 64199, (816,), 6),
    ("AZ", "Phoenix", 85001, 85099, (602, 480, 623), 12),
    ("WA", "Seattle", 98101, 98199, (206,), 9),
    ("CO", "Denver", 80201, 80299, (303, 720), 9),
    ("NC", "Charlotte", 28201, 28299, (704, 980), 10),
    ("TN", "Nashville", 37201, 37250, (615, 629), 8),
    ("TN", "Memphis", 37501, 38197, (901,), 6),
    ("KY", "Louisville", 40201, 40299, (502,), 5),
    ("IA", "Des Moines", 50301, 50340, (515,), 4),
    ("NV", "Las Vegas", 89101, 89199, (702, 725), 6),
    ("OR", "Portland", 97201, 97299, (503, 971), 6),
]

_SKILLS = [
    "forklift certified", "OSHA 10", "OSHA 30", "pallet jack", "RF scanner",
    "inventory control", "cycle counting", "shipping/receiving", "pick to light",
    "reach truck", "order picking", "packing", "quality control", "blueprint reading",
    "CNC programming", "MIG welding", "TIG welding", "stick welding", "soldering",
    "hand tools", "power tools", "lean manufacturing", "5S", "Six Sigma Yellow Belt",
    "Microsoft Excel", "Microsoft Word", "data entry", "10-key", "typing 60 wpm",
    "customer service", "call center", "bilingual Spanish", "bilingual Polish",
    "CPR/BLS", "phlebotomy", "EHR (Epic)", "patient care", "medication administration",
    "CDL-A", "HAZMAT endorsement", "clean MVR", "conduit bending", "NEC code",
    "PLC troubleshooting", "SQL", "Selenium", "JIRA", "floor care", "buffing",
    "team lead", "scheduling", "first aid",
]

_NOTES = [
    "Available for overtime",
    "Prefers 2nd shift, weekends OK",
    "Prefers 1st shift",
    "Requires 2 weeks notice",
    'Client requested "do not return"',
    "Bilingual (English/Spanish)",
    "Has own transportation",
    "Background check cleared",
    "Left voicemail, awaiting callback",
    "Temp-to-hire candidate",
    "Drug screen passed",
    "Needs steel-toe boots",
    "Referred by current worker",
    "Rehire eligible",
    "Not rehire eligible, see file",
    "Completed safety orientation",
    "Certifications expire next quarter",
    "Prefers Chicago-area assignments",
    'Goes by "Sam"',
    "Part-time only, mornings",
    "Available immediately",
    "On assignment through end of month",
]

_MULTILINE_NOTES = [
    "Reference check pending.\nCall back after 3pm",
    "Line 1: on hold\nLine 2: released by client",
    "Incident report filed 03/14.\nNo further action.",
    "Prefers nights,\nno weekends",
    'Client feedback:\n"Great attitude, reliable"',
]

_HIRE_START = _dt.date(2005, 1, 1)
_HIRE_END = _dt.date(2025, 12, 31)


def _ascii_lower(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _cum(weights) -> list[float]:
    return list(accumulate(float(w) for w in weights))


# --------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------


def iter_rows(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED,
              chunk_rows: int = CHUNK_ROWS) -> Iterator[list[tuple]]:
    """Yield the data rows (no header) in lists of at most ``chunk_rows`` tuples.

    Every value is already a ``str`` or ``int``; the chunk size does not
    change the values.
    """
    if rows < 0:
        raise ValueError("rows must be >= 0")
    rng = random.Random(seed)
    r = rng.random

    # Lookup tables (pure functions of the constants above).
    firsts = [(n, _ascii_lower(n)) for n in _FIRST_NAMES]
    lasts = [(n, _ascii_lower(n)) for n in _LAST_NAMES]
    n_first, n_last = len(firsts), len(lasts)
    domains = [d for d, _ in _EMAIL_DOMAINS]
    dom_cum = _cum(w for _, w in _EMAIL_DOMAINS)
    dom_total = dom_cum[-1]
    roles = [(name, base) for name, base, _ in _ROLES]
    role_cum = _cum(w for *_, w in _ROLES)
    role_total = role_cum[-1]
    locs = [(st, city, lo, hi - lo + 1, codes, len(codes))
            for st, city, lo, hi, codes, _ in _LOCATIONS]
    loc_cum = _cum(w for *_, w in _LOCATIONS)
    loc_total = loc_cum[-1]
    n_days = (_HIRE_END - _HIRE_START).days + 1
    hire_dates = [(_HIRE_START + _dt.timedelta(days=i)).isoformat() for i in range(n_days)]
    days_per_year = 365.25
    notes, n_notes = _NOTES, len(_NOTES)
    ml_notes, n_ml = _MULTILINE_NOTES, len(_MULTILINE_NOTES)

    # Pool of skill lists: 2-4 distinct skills joined with ", " (always quoted).
    skill_pool = [", ".join(rng.sample(_SKILLS, 2 + int(r() * 3))) for _ in range(4096)]
    n_skill_pool = len(skill_pool)

    wid = FIRST_WORKER_ID
    remaining = rows
    while remaining > 0:
        n = min(chunk_rows, remaining)
        remaining -= n
        chunk = []
        append = chunk.append
        for _ in range(n):
            first, first_e = firsts[int(r() * n_first)]
            last, last_e = lasts[int(r() * n_last)]
            u = r()
            if u < 0.5:
                local = f"{first_e}.{last_e}{wid % 1000}"
            elif u < 0.8:
                local = f"{first_e[0]}{last_e}{wid % 100}"
            else:
                local = f"{first_e}{last_e[0]}{wid % 10000}"
            email = f"{local}@{domains[bisect(dom_cum, r() * dom_total)]}"

            state, city, zlo, zspan, codes, ncodes = locs[bisect(loc_cum, r() * loc_total)]
            zip_code = f"{zlo + int(r() * zspan):05d}"
            phone = f"{codes[int(r() * ncodes)]}-{200 + int(r() * 800)}-{int(r() * 10000):04d}"

            role, base = roles[bisect(role_cum, r() * role_total)]
            day = int(r() * n_days)
            tenure = (n_days - day) / days_per_year
            prior = r()
            years = int(tenure + prior * prior * 20.0)
            rate = base * (1.0 + 0.02 * years) * (0.88 + 0.27 * r())
            active = "true" if r() < 0.72 else "false"

            u = r()
            if u < 0.5:
                note = ""
            elif u < 0.985:
                note = notes[int(r() * n_notes)]
            else:
                note = ml_notes[int(r() * n_ml)]

            append((
                wid, first, last, email, phone, role, state, city, zip_code,
                f"{rate:.2f}", years, hire_dates[day], active,
                skill_pool[int(r() * n_skill_pool)], note,
            ))
            wid += 1
        yield chunk


def write_workers_csv(path: Path | str, rows: int = DEFAULT_ROWS,
                      seed: int = DEFAULT_SEED) -> Path:
    """Write the fixture to ``path`` directly (no temp file); return ``path``."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="", buffering=4 << 20) as fh:
        _write(fh, rows, seed)
    return path


def _write(fh, rows: int, seed: int) -> None:
    writer = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for chunk in iter_rows(rows, seed):
        writer.writerows(chunk)


# --------------------------------------------------------------------------
# Cached fixture
# --------------------------------------------------------------------------


def default_cache_dir() -> Path:
    return REPO_ROOT / ".cache" / "fixtures"


def fixture_name(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> str:
    """``workers_500k.csv`` for the defaults; ``workers_1234.csv`` etc. otherwise."""
    size = f"{rows // 1000}k" if rows and rows % 1000 == 0 else str(rows)
    suffix = "" if seed == DEFAULT_SEED else f"_s{seed}"
    return f"workers_{size}{suffix}.csv"


def _meta(rows: int, seed: int) -> dict:
    return {"generator_version": GENERATOR_VERSION, "rows": rows, "seed": seed}


def ensure_workers_csv(rows: int = DEFAULT_ROWS, cache_dir: Path | None = None,
                       seed: int = DEFAULT_SEED) -> Path:
    """Return the path of the cached fixture, generating it once if needed.

    The CSV is written to a temporary file in ``cache_dir`` and renamed into
    place, so a half-written file is never seen under the final name.  A
    sidecar ``<name>.meta.json`` records generator version, rows, seed and
    byte size; a fixture whose sidecar does not match is regenerated.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / fixture_name(rows, seed)
    meta_path = path.with_name(path.name + ".meta.json")
    want = _meta(rows, seed)

    if path.exists() and meta_path.exists():
        try:
            have = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            have = {}
        if ({k: have.get(k) for k in want} == want
                and have.get("bytes") == path.stat().st_size):
            return path

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=cache_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="", buffering=4 << 20) as fh:
            _write(fh, rows, seed)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise

    meta = dict(want, bytes=path.stat().st_size)
    fd, tmp_meta = tempfile.mkstemp(prefix=f".{meta_path.name}.", suffix=".tmp", dir=cache_dir)
    with os.fdopen(fd, "w") as fh:
        json.dump(meta, fh)
    os.chmod(tmp_meta, 0o644)
    os.replace(tmp_meta, meta_path)
    return path


def pyarrow_csv_options():
    """(ReadOptions, ParseOptions, ConvertOptions) that read the fixture faithfully.

    ``newlines_in_values=True`` for the multi-line notes, ``zip`` (and
    ``phone``) forced to string so leading zeros survive, ``true``/``false``
    parsed as booleans, ``hire_date`` as date32.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return (
        pacsv.ReadOptions(),
        pacsv.ParseOptions(newlines_in_values=True),
        pacsv.ConvertOptions(
            column_types={
                "worker_id": pa.int64(),
                "zip": pa.string(),
                "phone": pa.string(),
                "hourly_rate": pa.float64(),
                "years_experience": pa.int64(),
                "hire_date": pa.date32(),
                "active": pa.bool_(),
                "notes": pa.string(),
            },
            strings_can_be_null=False,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workers",
        description="Generate the deterministic workers CSV benchmark fixture.",
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS,
                        help=f"number of data rows (default {DEFAULT_ROWS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"RNG seed (default {DEFAULT_SEED})")
    parser.add_argument("--out", type=Path, default=None,
                        help="output path; '-' for stdout; default: the cached "
                             "fixture under <repo>/.cache/fixtures")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    if args.out is None:
        path = ensure_workers_csv(args.rows, seed=args.seed)
    elif str(args.out) == "-":
        sys.stdout.reconfigure(newline="")
        _write(sys.stdout, args.rows, args.seed)
        sys.stdout.flush()
        return 0
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp")
        try:
            write_workers_csv(tmp, args.rows, args.seed)
            os.replace(tmp, args.out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        path = args.out
    dt = time.perf_counter() - t0
    print(f"{path}\t{args.rows} rows\t{path.stat().st_size} bytes\t{dt:.2f}s",
          file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
