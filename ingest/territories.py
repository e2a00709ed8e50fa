"""Territory codes (ISO 3166-1 alpha-2) and their validation for the rights/takedown commands."""

from __future__ import annotations

from core.errors import PlaylogError

# The 249 officially assigned ISO 3166-1 alpha-2 codes, plus XK (Kosovo, user-assigned but used
# by every music service and by the EU).
ISO_3166_ALPHA2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
    EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
    HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
    LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
    NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
    """.split()
)


def parse_territories(raw: str, *, allow_everywhere: bool) -> list[str]:
    """``"de, FR"`` -> ["DE", "FR"] (deduplicated, order kept); ``"*"`` only if allowed.

    Raises PlaylogError naming the first bad code.
    """
    out: list[str] = []
    parts = [p.strip() for p in raw.split(",")]
    if not raw.strip() or any(not p for p in parts):
        raise PlaylogError(f"--territories {raw!r}: give comma-separated ISO 3166-1 alpha-2 codes, e.g. DE,FR")
    for part in parts:
        code = part.upper()
        if code == "*":
            if not allow_everywhere:
                raise PlaylogError("--territories '*' is only for takedowns; rights are set per territory")
            if len(parts) > 1:
                raise PlaylogError("--territories '*' means everywhere; do not combine it with codes")
        elif code not in ISO_3166_ALPHA2:
            raise PlaylogError(f"--territories: {part!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE, FR, US)")
        if code not in out:
            out.append(code)
    return out
