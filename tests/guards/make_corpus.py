"""Regenerate the generated half of the labelled corpus: ``python -m tests.guards.make_corpus``.

Valid card numbers, IBANs and emails are produced from a fixed seed with their own check-digit
arithmetic (written independently of gateway/guards) and embedded in neutral sentences; the
hand-written positives and tricky negatives live in ``corpus/handwritten.json``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"

SENTENCES = [
    "Please use {v} for this one.",
    "{v}",
    "Here it is: {v}",
    "The customer gave us {v} yesterday, can you check it?",
    "Hi team,\nthe value is {v}.\nThanks",
    "Can you summarise the note that mentions {v} and the meeting time?",
    "Data: name=Alex, value={v}, city=Lyon",
    "I wrote down ({v}) on the form.",
]
CARD_SENTENCES = [*SENTENCES, "My Visa card is {v}, expiry 04/27.", "Charge the credit card {v} please."]


def _luhn_complete(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these positions get doubled once the check digit is appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return partial + str((10 - total % 10) % 10)


def _cards(rng: random.Random) -> list[str]:
    brands = [
        ("4", 16), ("4", 13), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15),
        ("6011", 16), ("65", 16), ("3530", 16), ("3589", 16), ("36", 14), ("62", 16), ("4", 19),
    ]  # fmt: skip
    out = []
    for i in range(45):
        prefix, length = brands[i % len(brands)]
        body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        number = _luhn_complete(body)
        style = i % 3
        if style == 1 and length == 16:
            number = " ".join(number[j : j + 4] for j in range(0, 16, 4))
        elif style == 2 and length == 16:
            number = "-".join(number[j : j + 4] for j in range(0, 16, 4))
        elif style == 1 and length == 15:
            number = f"{number[:4]} {number[4:10]} {number[10:]}"
        out.append(number)
    return out


def _iban(country: str, bban: str) -> str:
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(digits) % 97
    return f"{country}{check:02d}{bban}"


def _ibans(rng: random.Random) -> list[str]:
    formats = {"DE": "n18", "GB": "a4n14", "FR": "n10a11n2", "ES": "n20", "IT": "a1n10a12", "NL": "a4n10",
               "BE": "n12", "CH": "n17", "AT": "n16", "PL": "n24", "PT": "n21", "IE": "a4n14", "SE": "n20",
               "DK": "n14", "NO": "n11", "FI": "n14", "LU": "n16", "CZ": "n20", "RO": "a4n16"}  # fmt: skip
    out = []
    countries = list(formats)
    for i in range(40):
        country = countries[i % len(countries)]
        spec = formats[country]
        bban = ""
        # "a4n14": four letters then fourteen digits
        j = 0
        while j < len(spec):
            kind = spec[j]
            k = j + 1
            while k < len(spec) and spec[k].isdigit():
                k += 1
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if kind == "a" else "0123456789"
            bban += "".join(rng.choice(alphabet) for _ in range(int(spec[j + 1 : k])))
            j = k
        iban = _iban(country, bban)
        if i % 2 == 1:
            iban = " ".join(iban[m : m + 4] for m in range(0, len(iban), 4))
        out.append(iban)
    return out


def _emails(rng: random.Random) -> list[str]:
    firsts = [
        "anna",
        "jean-luc",
        "m.garcia",
        "li",
        "o'brien",
        "zoe",
        "k.schmidt",
        "team+billing",
        "x_y",
        "sam99",
    ]
    domains = [
        "example.com", "mail.example.org", "firma.de", "univ.ac.uk", "startup.io", "gov.example.fr",
        "sub.domain.example.co.jp", "shop.travel", "x.dev", "long-domain-name.example.net",
    ]  # fmt: skip
    out = []
    for i in range(40):
        local = firsts[i % len(firsts)].replace("'", "")
        if i % 4 == 1:
            local += str(rng.randint(1, 999))
        if i % 5 == 2:
            local = local.upper()
        out.append(f"{local}@{domains[(i * 3) % len(domains)]}")
    return out


def _luhn_failing(rng: random.Random) -> list[str]:
    out = []
    while len(out) < 30:
        number = rng.choice("456") + "".join(rng.choice("0123456789") for _ in range(15))
        digits = [int(c) for c in number]
        total = sum(
            d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits))
        )
        if total % 10:
            out.append(number)
    return out


def main() -> None:
    rng = random.Random(8)
    generated = {
        "CREDIT_CARD": {
            "positives": [
                {"text": CARD_SENTENCES[i % len(CARD_SENTENCES)].format(v=v), "value": v}
                for i, v in enumerate(_cards(rng))
            ],
            "negatives": [
                SENTENCES[i % len(SENTENCES)].format(v=v) for i, v in enumerate(_luhn_failing(rng))
            ],
        },
        "IBAN_CODE": {
            "positives": [
                {"text": SENTENCES[i % len(SENTENCES)].format(v=v), "value": v}
                for i, v in enumerate(_ibans(rng))
            ],
            "negatives": [],
        },
        "EMAIL_ADDRESS": {
            "positives": [
                {"text": SENTENCES[i % len(SENTENCES)].format(v=v), "value": v}
                for i, v in enumerate(_emails(rng))
            ],
            "negatives": [],
        },
    }
    (CORPUS / "generated.json").write_text(json.dumps(generated, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
