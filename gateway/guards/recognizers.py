"""Built-in PII recognizers: email, phone, credit card, IBAN, US SSN, IP addresses.

Speed comes from few passes over the text: one regex pass finds runs of digits and separators,
and only runs with enough digits are handed to the card, SSN, phone and IPv4 patterns (matched
inside the run's bounds, so their look-arounds still see the real neighbours). Email and IPv6
start from literal ``@`` and ``:`` positions; IBAN has its own pass. Candidates are validated
(Luhn, mod-97, ranges, ``ipaddress``) and scored with context words.
"""

from __future__ import annotations

import ipaddress
import re
import string

from presidio_anonymizer.entities import RecognizerResult

from gateway.guards.checksums import IBAN_LENGTHS, card_brand, iban_valid, luhn_valid, ssn_valid
from gateway.guards.context import REFERENCE_WORDS, Context, Recognizer


class EmailRecognizer:
    entities = frozenset({"EMAIL_ADDRESS"})
    _pattern = re.compile(
        r"(?<![\w.%+'-])[A-Za-z0-9][A-Za-z0-9._%+'-]{0,63}@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![\w-])"
    )
    _local = frozenset(string.ascii_letters + string.digits + "._%+-'")
    #: "icon@2x.png" or "report@2021.xlsx" are file names, not addresses.
    _file_extensions = frozenset(
        "png jpg jpeg gif svg webp ico bmp tiff pdf xlsx xls docx doc pptx ppt csv txt json yaml yml log "
        "html htm mp3 mp4 wav gz".split()
    )

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        out: list[RecognizerResult] = []
        at = text.find("@")
        while at >= 0:
            start = at
            while start > 0 and at - start < 64 and text[start - 1] in self._local:
                start -= 1
            while start < at and not text[start].isalnum():  # 'quoted'@… starts after the quote
                start += 1
            m = self._pattern.match(text, start) if start < at else None
            if m is not None and m.group(1).lower() not in self._file_extensions:
                out.append(RecognizerResult("EMAIL_ADDRESS", m.start(), m.end(), 0.85))
            at = text.find("@", m.end() if m is not None else at + 1)
        return out


_PHONE_POSITIVE = [
    r"phone", r"tel\b", r"tel\.", r"telephone", r"call", r"mobile", r"cell", r"fax", r"whatsapp",
    r"sms", r"text me", r"reach me", r"dial", r"contact", r"telefon", r"handy", r"rufnummer",
    r"téléphone", r"portable", r"teléfono", r"móvil", r"movil", r"celular", r"cellulare",
    r"telemóvel", r"ligue", r"llama", r"chiama", r"anrufen", r"appel",
]  # fmt: skip
_PHONE_NEGATIVE = [
    *REFERENCE_WORDS, r"account", r"iban", r"version", r"amount", r"total", r"price", r"eur\b",
    r"usd\b", r"\$", r"€", r"isbn", r"customer",
]  # fmt: skip
_CARD_POSITIVE = [
    r"card", r"credit", r"debit", r"visa", r"master ?card", r"amex", r"american express",
    r"discover", r"jcb", r"diners", r"unionpay", r"maestro", r"cc\b", r"ccn", r"cvv", r"cvc",
    r"expir", r"exp\b", r"pan\b", r"kreditkarte", r"karte", r"carte", r"tarjeta", r"carta",
    r"cartão", r"cartao", r"pay with", r"charge",
]  # fmt: skip
_IP_POSITIVE = [
    r"ip\b", r"ipv4", r"ipv6", r"address", r"host", r"server", r"subnet", r"gateway", r"dns",
    r"ping", r"ssh", r"firewall", r"client", r"router", r"proxy", r"connect", r"adresse", r"dirección",
]  # fmt: skip
_IP_NEGATIVE = [r"version", r"ver\b", r"release", r"build", r"v\b", r"section", r"chapter", r"§", r"oid\b"]

_DROP_DIGITS = str.maketrans("", "", string.digits)


def _digit_count(s: str) -> int:
    return len(s) - len(s.translate(_DROP_DIGITS))


class NumberRecognizer:
    """Credit cards, US SSNs, phone numbers and IPv4 addresses, from one pass over digit runs.

    * CREDIT_CARD: 12-19 digits (spaces or dashes allowed), an issuer prefix and length of a
      major brand, and a valid Luhn sum. 0.6, 0.7 when grouped like a card; +0.3 with card
      words nearby; x0.4 with reference words (order, tracking, invoice …) and no card words.
    * US_SSN: ``AAA-GG-SSSS`` outside the never-issued ranges (area 000/666/9xx, group 00,
      serial 0000). 0.6 dashed, 0.4 spaced, 0.3 bare; +0.35 with SSN words.
    * PHONE_NUMBER: ``+`` international (8-15 digits) 0.7, NANP ``(415) 555-0132`` 0.6,
      0-prefixed national ``030 1234567`` 0.4-0.5; +0.3 with phone words.
    * IP_ADDRESS: dotted quads valid for ``ipaddress``; 0.6, x0.4 next to "version" etc.
    """

    entities = frozenset({"CREDIT_CARD", "US_SSN", "PHONE_NUMBER", "IP_ADDRESS"})
    _run = re.compile(r"\d[\d().\-/ +]{6,}")

    _card = re.compile(r"(?<![\w\-.,])(?<!\d[ \-])\d(?:[ \-]?\d){11,18}(?![\w\-])(?![ .,]\d)")
    _card_grouped = re.compile(r"\d{4}([ \-])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ \-])\d{6}\2\d{4,5}")
    _card_context = Context(_CARD_POSITIVE, [*REFERENCE_WORDS, r"account", r"iban", r"phone", r"tel\b"])

    _ssn = re.compile(r"(?<![\w\-.])(?<!\d[ \-])(\d{3})([\- ]?)(\d{2})\2(\d{4})(?![\w\-])(?![ .]\d)")
    _ssn_context = Context(
        [r"ssn", r"social security", r"social sec", r"ss#", r"ss no", r"taxpayer", r"tin\b", r"itin"],
        [*REFERENCE_WORDS, r"phone", r"tel\b", r"zip", r"account", r"routing"],
        boost=0.35,
    )
    #: Numbers printed as examples everywhere (and the famous Woolworth wallet card).
    _ssn_examples = frozenset({"123456789", "078051120", "219099999"})

    _phone_international = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){1,6}(?![\w-])(?![ .]\d)")
    _phone_nanp = re.compile(
        r"(?<![\w(+\-.])(?<!\d[ \-])(?:1[ .\-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .\-])"
        r"[2-9]\d{2}[ .\-]\d{4}(?![\w\-])(?![ .]\d)"
    )
    _phone_national = re.compile(
        r"(?<![\w+.,/\-])(?<!\d[ \-])0\d{1,4}(?:[ /\-]\d{2,8}){1,4}(?![\w\-])(?![.,/ ]\d)"
    )
    _phone_context = Context(_PHONE_POSITIVE, _PHONE_NEGATIVE)
    _ssn_shape = re.compile(r"\d{3}-\d{2}-\d{4}")

    _ipv4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w)(?!\.\d)")
    _ip_context = Context(_IP_POSITIVE, _IP_NEGATIVE)

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        want = self.entities if wanted is None else self.entities & wanted
        out: list[RecognizerResult] = []
        n = len(text)
        for run in self._run.finditer(text):
            raw = run.group()
            digits = _digit_count(raw)
            # Patterns may start just before the run ("+", "(") and look one or two chars past it.
            pos, endpos = max(0, run.start() - 2), min(n, run.end() + 2)
            if digits >= 12 and "CREDIT_CARD" in want:
                self._cards(text, pos, endpos, out)
            if digits >= 9 and "US_SSN" in want:
                self._ssns(text, pos, endpos, out)
            if digits >= 8 and "PHONE_NUMBER" in want:
                self._phones(text, pos, endpos, out)
            if raw.count(".") >= 3 and "IP_ADDRESS" in want:
                self._ipv4s(text, pos, endpos, out)
        return out

    def _cards(self, text: str, pos: int, endpos: int, out: list[RecognizerResult]) -> None:
        for m in self._card.finditer(text, pos, endpos):
            raw = m.group()
            digits = raw.replace(" ", "").replace("-", "")
            if len(set(digits)) < 2 or not luhn_valid(digits) or card_brand(digits) is None:
                continue
            base = 0.7 if self._card_grouped.fullmatch(raw) else 0.6
            out.append(
                RecognizerResult("CREDIT_CARD", *m.span(), self._card_context.score(text, *m.span(), base))
            )

    def _ssns(self, text: str, pos: int, endpos: int, out: list[RecognizerResult]) -> None:
        for m in self._ssn.finditer(text, pos, endpos):
            area, sep, group, serial = m.groups()
            digits = area + group + serial
            if not ssn_valid(area, group, serial) or len(set(digits)) == 1 or digits in self._ssn_examples:
                continue
            base = {"-": 0.6, " ": 0.4}.get(sep, 0.3)
            out.append(RecognizerResult("US_SSN", *m.span(), self._ssn_context.score(text, *m.span(), base)))

    def _phones(self, text: str, pos: int, endpos: int, out: list[RecognizerResult]) -> None:
        found: list[tuple[int, int, float]] = []
        for m in self._phone_international.finditer(text, pos, endpos):
            if 8 <= _digit_count(m.group()) <= 15:
                found.append((*m.span(), 0.7))
        for m in self._phone_nanp.finditer(text, pos, endpos):
            found.append((*m.span(), 0.6))
        for m in self._phone_national.finditer(text, pos, endpos):
            if 9 <= _digit_count(m.group()) <= 12 and not self._ssn_shape.fullmatch(m.group()):
                groups = len(re.split(r"[ /\-]", m.group()))
                found.append((*m.span(), 0.5 if groups >= 3 else 0.4))
        for start, end, base in found:
            out.append(
                RecognizerResult(
                    "PHONE_NUMBER", start, end, self._phone_context.score(text, start, end, base)
                )
            )

    def _ipv4s(self, text: str, pos: int, endpos: int, out: list[RecognizerResult]) -> None:
        for m in self._ipv4.finditer(text, pos, endpos):
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            out.append(
                RecognizerResult("IP_ADDRESS", *m.span(), self._ip_context.score(text, *m.span(), 0.6))
            )


class Ipv6Recognizer:
    """IPv6 addresses valid for ``ipaddress``, found from ``x:y:`` seeds; compressed forms with
    fewer than three groups ("1::2") score 0.3 unless IP words are nearby."""

    entities = frozenset({"IP_ADDRESS"})
    _seed = re.compile(r":[0-9A-Fa-f]{0,4}:")
    _v6 = re.compile(
        r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])(?!\.\d)"
    )
    _chars = frozenset(string.hexdigits + ":.")
    _context = Context(_IP_POSITIVE, _IP_NEGATIVE)

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        if "::" not in text and text.count(":") < 2:
            return []
        out: list[RecognizerResult] = []
        n = len(text)
        covered = 0
        for seed in self._seed.finditer(text):
            if seed.start() < covered:
                continue
            start, end = seed.start(), seed.end()
            while start > 0 and seed.start() - start < 40 and text[start - 1] in self._chars:
                start -= 1
            while end < n and end - seed.end() < 45 and text[end] in self._chars:
                end += 1
            covered = end
            for m in self._v6.finditer(text, start, min(n, end + 2)):
                candidate = m.group()
                try:
                    ipaddress.IPv6Address(candidate)
                except ValueError:
                    continue
                groups = [g for g in candidate.split(":") if g]
                strong = len(groups) >= 3 or (len(groups) == 2 and max(len(g) for g in groups) >= 3)
                score = self._context.score(text, *m.span(), 0.6 if strong else 0.3)
                out.append(RecognizerResult("IP_ADDRESS", *m.span(), score))
        return out


class IbanRecognizer:
    """Country code, check digits, then the country's BBAN length (grouped by spaces or not),
    valid for mod-97. Upper-case only. Score 0.9."""

    entities = frozenset({"IBAN_CODE"})
    # The look-behind sits after the first letter so the regex engine can skip to upper-case letters.
    _start = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?=[ ]?[A-Z0-9]{4})")

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        out: list[RecognizerResult] = []
        n = len(text)
        for m in self._start.finditer(text):
            length = IBAN_LENGTHS.get(m.group()[:2])
            if length is None:
                continue
            chars = [m.group()]
            need = length - 4
            i = m.end()
            while need and i < n:
                ch = text[i]
                if ch == " " and i + 1 < n and text[i + 1].isalnum() and text[i - 1] != " ":
                    i += 1
                    continue
                if not (ch.isdigit() or "A" <= ch <= "Z"):
                    break
                chars.append(ch)
                need -= 1
                i += 1
            if need or (i < n and text[i].isalnum()):
                continue
            if iban_valid("".join(chars)):
                out.append(RecognizerResult("IBAN_CODE", m.start(), i, 0.9))
        return out


def builtin_pii_recognizers() -> list[Recognizer]:
    return [EmailRecognizer(), IbanRecognizer(), NumberRecognizer(), Ipv6Recognizer()]
