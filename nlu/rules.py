"""Emergency rules: patterns for gas, fire, smoke, flooding, people trapped or in danger, sparks.

They run on the normalised text and win over the classifier, because missing an emergency costs
far more than a false alarm. Each rule has exclusions for the usual look-alikes (a smoke detector
beeping, a neighbour's cigarette smoke, a lift that is merely broken).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PERSON = (
    r"(?:je|on|nous|quelqu un|quelqu une|personne|personnes|gens|enfant|"
    r"enfants|bebe|fils|fille|mere|pere|mari|femme|voisin|voisine|dame|monsieur|papi|mamie|"
    r"grand mere|grand pere|someone|somebody|people|child|children|kid|kids|baby|son|daughter|"
    r"mother|father|we|i|man|woman|person|neighbour|neighbor)"
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One emergency pattern with the look-alikes that must not trigger it."""

    name: str
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


RULES: tuple[Rule, ...] = (
    Rule(
        "gas",
        _re(
            r"\b(?:sen[st]?|sentir|senti|odeur|odeurs|pue|puent|fuite|fuites|smell|smells|smelling|"
            r"smelt|leak|leaking)\b(?:\s+\w+){0,3}\s+(?:gaz|gas)\b"
            r"|\b(?:gaz|gas)\s+(?:smell|leak|odou?r)"
        ),
        _re(r"\b(?:compteur|facture|contrat|releve|abonnement|bill|meter|reading)\b"),
    ),
    Rule(
        "fire",
        _re(
            r"\bau feu\b|\bil y a (?:le |du )?feu\b|\bincendies?\b|\ben feu\b|\bprend feu\b|"
            r"\bpris feu\b|\bflammes?\b|"
            r"\bbrule\b(?:\s+\w+){0,2}\s+(?:appartement|cuisine|immeuble)|"
            r"\bon fire\b|\bfire\b(?!\s+(?:alarm|extinguisher|door|exit|safety))|\bflames?\b|"
            r"\bburning\b"
        ),
        _re(
            r"\b(?:extincteur|exercice|alarme incendie|porte coupe feu|coupe feu|detecteur|"
            r"consignes?|fire drill|feu de artifice|feux de artifice|barbecue|cheminee)\b"
        ),
    ),
    # Smoke described as heavy is an emergency whatever else is said ("the detector rings and
    # there is smoke everywhere").
    Rule(
        "smoke",
        _re(
            r"\b(?:fumee|fumees|smoke)\s+(?:partout|everywhere|noire|epaisse|black|thick)\b|"
            r"\b(?:beaucoup de|plein de|pleine de|remplie? de|envahie? (?:de|par))"
            r"\s+(?:la )?fumee\b|"
            r"\b(?:filling|filled|full) (?:up )?with smoke\b"
        ),
    ),
    Rule(
        "smoke",
        _re(r"\bfumee\b|\bfume\b(?!r)|\bfumees\b|\bsmoke\b|\bsmoking\b|\bsmoky\b"),
        _re(
            r"\bdetecteurs?\b|\bdaaf\b|\bdetector\b|\balarm\b|\bpile\b|\bbattery\b|\bbip\w*\b|"
            r"\bbeep\w*\b|\bcigarettes?\b|\bclopes?\b|\bshit\b|\bjoints?\b|\bchicha\b|\bcannabis\b|"
            r"\bweed\b|\btabac\b|\bfumeurs?\b|\bfument\b|\bbarbecue\b|\bbbq\b|\bcigarette\b|"
            r"\b(?:voisin|voisine|voisins|jeunes|gens|il|elle|ils|elles)\s+(?:\w+\s+)?fume(?:nt)?\b|"
            r"\bsmokers?\b|\bpot\b|\bne fume\b|\bil fume\b|\bils fument\b|\bpoisson\b"
        ),
    ),
    Rule(
        "flooding",
        _re(
            r"\binond\w*\b|\bflood\w*\b|\beau (?:partout|coule de partout)\b|"
            r"\b(?:eau|ca|il)\s+(?:coule|ruisselle|tombe|pisse|gicle|jaillit)\s+(?:a flots|partout|"
            r"du plafond|des murs|du plafonnier|de partout|sur le electricite|dans les prises)|"
            r"\bdegats? des eaux en cours\b|"
            r"\bwater (?:everywhere|pouring|gushing|coming through)\b|"
            r"\btuyau (?:a|qui a) (?:eclate|pete)\b|\b(?:pipe|pipes) (?:burst|has burst)\b|"
            r"\bburst pipe\b|\bcanalisation (?:a |qui a )?(?:eclate|pete)\b"
        ),
        _re(
            r"\b(?:le annee derniere|le an dernier|le mois dernier|le hiver dernier|assurance|"
            r"attestation|declaration|constat|indemnis\w*|last year|insurance|remboursement|"
            r"zone inondable)\b"
        ),
    ),
    Rule(
        "trapped",
        _re(
            r"\b(?:bloque|bloquee|bloques|bloquees|coince|coincee|coinces|coincees|enferme|"
            r"enfermee|enfermes|enfermees|stuck|trapped|locked)\s+(?:\w+\s+){0,2}"
            r"(?:dans|a l interieur|in|inside)\s+(?:le |l |un |the |a )?"
            r"(?:ascenseur|lift|cabine)\b"
            rf"|\b{_PERSON}\s+(?:\w+\s+)?(?:est|sont|suis|sommes|reste|restee|is|are|am|got)?\s*"
            r"(?:bloque|bloquee|bloques|coince|coincee|coinces|enferme|enfermee|stuck|trapped)\b"
            r"(?!\s+(?:par|avec|pour|by|with|for))"
            r"|\bsomeone (?:is )?(?:stuck|trapped)\b|\btrapped\b"
            rf"|\b(?:avec\s+)?(?:des |un |une |mon |ma |mes |le |la )?{_PERSON}\s+dedans\b"
            r"|\b(?:people|someone|somebody|children|kids) inside\b"
        ),
        _re(
            r"\bdehors\b|\blocked out\b|\bsans (?:mes )?cles\b|"
            r"\b(?:porte|fenetre|volet|serrure|cle|door|window|key|voiture|car)\s+(?:\w+\s+)?"
            r"(?:est |is )?(?:bloquee?|coincee?|stuck)\b"
        ),
    ),
    Rule(
        "danger",
        _re(
            r"\ben danger\b|\bdanger de mort\b|\bin danger\b|\bdanger imminent\b|"
            r"\bva se effondrer\b|\bse effondre\b|\bse est effondre\w*\b|\bse ecroule\b|"
            r"\bcollapsing\b|"
            r"\bcollapsed\b|\belectrocut\w*\b|\binconscient\w*\b|\bunconscious\b|"
            r"\bne respire plus\b|\bnot breathing\b|\bmonoxyde\b|\bcarbon monoxide\b"
        ),
        _re(r"\b(?:pas de danger|aucun danger|no danger|pas en danger|not in danger)\b"),
    ),
    Rule(
        "sparks",
        _re(
            r"\betincelles?\b|\bsparks?\b|\bsparking\b|\bcourt circuit\w*\b|"
            r"\b(?:prise|prises|tableau electrique|disjoncteur|compteur|fils?|cables?|socket|"
            r"plug|outlet|wires?|wiring)\s+(?:\w+\s+){0,2}(?:fume|fument|grille|brule|crame|"
            r"noirci|fond|smoking|burning|melting|melted)\b|\bfils? denudes?\b.*\beau\b|"
            r"\bodeur de (?:brule|plastique brule|crame)\b.*\b(?:prise|tableau|compteur)\b|"
            r"\bsmell of burning\b"
        ),
    ),
)


# Contexts where an emergency word is harmless: equipment, bills, drills, things (not people) stuck.
_HARMLESS = re.compile(
    r"\b(?:detecteurs?|daaf|smoke (?:alarm|detector)|pile|battery|bip\w*|beep\w*|exercice|"
    r"extincteurs?|coupe feu|fire door|fire drill|facture|fournisseur|abonnement|bill|"
    r"compteur de gaz|gas meter)\b"
    r"|\b(?:porte|fenetre|volet|serrure|cle|poignee|tiroir|ascenseur|door|window|lift|elevator|"
    r"shutter)s?\s+(?:\w+\s+){0,2}(?:bloquee?s?|coincee?s?|stuck|jammed)\b"
)


def look_alike(normalized: str) -> bool:
    """True when emergency words appear only in a harmless context (a detector's battery...).

    The classifier learns "fumee" or "gaz" as emergency words; this lets the engine overrule it
    when no rule fired and the context says equipment, bills or a stuck door.
    """
    if emergency_rule(normalized):
        return False
    if _HARMLESS.search(normalized):
        return True
    return any(
        rule.unless is not None
        and rule.pattern.search(normalized)
        and rule.unless.search(normalized)
        for rule in RULES
    )


def emergency_rule(normalized: str) -> str | None:
    """Return the name of the first emergency rule that fires on the normalised text, or None."""
    for rule in RULES:
        if rule.pattern.search(normalized) and not (rule.unless and rule.unless.search(normalized)):
            return rule.name
    # A smoke or fire exclusion must not hide sparks from a socket: the loop above tries them all.
    return None
