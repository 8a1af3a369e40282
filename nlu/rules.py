"""Emergency rules: patterns for gas, fire, smoke, flooding, people trapped or in danger, sparks.

They run on the normalised text and win over the classifier, because missing an emergency costs
far more than a false alarm. Each rule has exclusions for the usual look-alikes (a smoke detector
beeping, a neighbour's cigarette smoke, a lift that is merely broken).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_PERSON = (
    r"(?:je|on|nous|quelqu un|quelqu une|personne|personnes|gens|enfant|"
    r"enfants|bebe|fils|fille|mere|pere|mari|femme|voisin|voisine|dame|monsieur|papi|mamie|"
    r"grand mere|grand pere|someone|somebody|people|child|children|kid|kids|baby|son|daughter|"
    r"mother|father|we|i|man|woman|person|neighbour|neighbor)"
)


# A smoke detector that beeps for its battery or rings for nothing is a repair; a detector ringing
# with smoke around is not excused by this.
_DETECTOR_FAULT = (
    r"\b(?:detecteurs?|daaf|detectors?|alarms?)\b.{0,60}\b(?:piles?|batterie|battery|bip\w*|"
    r"beep\w*|chirp\w*|pour rien|sans raison|ne marche|ne fonctionne|installer|installe|"
    r"changer|remplacer|obligatoire|low|keeps going off|false|for nothing|broken)\b"
    r"|\b(?:piles?|batterie|battery|bip\w*|beep\w*|chirp\w*)\b.{0,40}\b(?:detecteurs?|daaf|"
    r"detectors?|alarms?)\b"
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One emergency pattern with the look-alikes that must not trigger it."""

    name: str
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None
    # Cheap substring test run first: most messages contain none of these, and the person
    # patterns are slow to fail on long texts.
    needles: tuple[str, ...] = ()

    def fires(self, normalized: str) -> bool:
        if self.needles and not any(n in normalized for n in self.needles):
            return False
        if not self.pattern.search(normalized):
            return False
        return not (self.unless and self.unless.search(normalized))

    def excused(self, normalized: str) -> bool:
        """The pattern matches but the exclusion says the context is harmless."""
        if self.needles and not any(n in normalized for n in self.needles):
            return False
        return bool(
            self.unless and self.pattern.search(normalized) and self.unless.search(normalized)
        )


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
            r"\bburning\b|"
            r"\b(?:poubelles?|voitures?|caves?|appartement|immeuble|local|cuisine|scooters?|"
            r"containers?|conteneurs?|matelas|bins?|car|flat)\s+(?:\w+\s+)?"
            r"(?:brule|brulent|crame|crament|flambe|flambent)\b"
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
            rf"{_DETECTOR_FAULT}|"
            r"\bcigarettes?\b|\bclopes?\b|\bshit\b|\bjoints?\b|\bchicha\b|\bcannabis\b|"
            r"\bweed\b|\btabac\b|\bfumeurs?\b|\bfument\b|\bbarbecue\b|\bbbq\b|\bcigarette\b|"
            r"\b(?:voisin|voisine|voisins|jeunes|gens|il|elle|ils|elles)\s+(?:\w+\s+){0,3}fume(?:nt)?\b|"
            r"\bsmok(?:er|ers|es)\b|\bpot\b|\bne fume\b|\bil fume\b|\bils fument\b|\bpoisson\b"
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
            r"\bwater (?:is )?(?:pouring|gushing|streaming|flooding)\b|"
            r"\b(?:eau|water)\s+(?:\w+\s+){0,3}(?:coule|coulent|tombe|sort|ruisselle|goutte|"
            r"gouttes|pouring|dripping|coming|leaking|running)\b.{0,60}\b(?:compteur electrique|"
            r"tableau electrique|prises?|luminaires?|lampes?|plafonnier|lights?|sockets?|"
            r"fuse ?box|electricite|electrique)\b|"
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
            r"(?:bloquee?s?|coincee?s?|enfermee?s?|stuck|trapped)\b"
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
        needles=("bloq", "coinc", "enferm", "stuck", "trapped", "locked", "dedans", "inside"),
    ),
    Rule(
        "danger",
        _re(
            r"\ben danger\b|\bdanger de mort\b|\bin danger\b|\bdanger imminent\b|"
            r"\bva se effondrer\b|\bse effondre\b|\bse est effondre\w*\b|\bse ecroule\b|"
            r"\bcollapsing\b|"
            r"\bcollapsed\b|\belectrocut\w*\b|\binconscient\w*\b|\bunconscious\b|"
            r"\b(?:tombee?s?|par terre|allongee?s?|fallen|collapsed)\b.{0,40}"
            r"\b(?:ne (?:bouge|repond|respire) plus|not moving|not responding)\b|"
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
_HARMLESS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (
        (),
        re.compile(
            rf"{_DETECTOR_FAULT}|"
            r"\b(?:exercice|extincteurs?|coupe feu|fire door|fire drill|facture|fournisseur|"
            r"abonnement|bill|compteur de gaz|gas meter)\b"
        ),
    ),
    (
        ("bloq", "coinc", "stuck", "jammed"),
        re.compile(
            r"\b(?:porte|fenetre|volet|serrure|cle|poignee|tiroir|ascenseur|door|window|lift|"
            r"elevator|shutter)s?\s+(?:\w+\s+){0,2}(?:bloquee?s?|coincee?s?|stuck|jammed)\b"
        ),
    ),
    (
        ("sen", "pue", "odeur", "smell", "stink"),
        re.compile(
            r"\b(?:sen[st]?|pue|puent|odeurs?|smells?|stinks?)\b(?:\s+\w+){0,3}\s+(?:urine|"
            r"pisse|pipi|cannabis|shit|beuh|weed|poubelles?|ordures|egouts?|moisi|renferme|"
            r"chiens?|chats?|tabac|cigarettes?|friture|cuisine|rubbish|bins?|sewage|damp|pee)\b"
        ),
    ),
)


def look_alike(normalized: str) -> bool:
    """True when emergency words appear only in a harmless context (a detector's battery...).

    The classifier learns "fumee" or "gaz" as emergency words; this lets the engine overrule it
    when the context says equipment, bills or a stuck door. Call it only when no rule fired.
    """
    for needles, pattern in _HARMLESS:
        if (not needles or any(n in normalized for n in needles)) and pattern.search(normalized):
            return True
    return any(rule.excused(normalized) for rule in RULES)


def emergency_rule(normalized: str) -> str | None:
    """Return the name of the first emergency rule that fires on the normalised text, or None."""
    for rule in RULES:
        if rule.fires(normalized):
            return rule.name
    return None


def decide(
    ranking: Sequence[tuple[str, float]],
    normalized: str,
    threshold: float,
    *,
    emergency: bool | None = None,
) -> tuple[str, float]:
    """Turn the classifier's ranking into the intent, after the emergency rules and threshold.

    `emergency` is the rules' verdict when the caller already has it (e.g. from the parts of a
    long message); otherwise the rules run on `normalized`.
    """
    intent, confidence = ranking[0] if ranking else ("out_of_scope", 0.0)
    if emergency is None:
        emergency = emergency_rule(normalized) is not None
    if emergency:
        return "emergency", max(confidence if intent == "emergency" else 0.0, 0.99)
    if intent == "emergency" and look_alike(normalized):
        # "le détecteur de fumée bipe": the rules judged the context harmless, so the
        # classifier's second choice is the better reading.
        intent, confidence = ranking[1] if len(ranking) > 1 else ("out_of_scope", 0.0)
    if confidence < threshold:
        return "out_of_scope", confidence
    return intent, confidence
