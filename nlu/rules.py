"""Emergency layer: hazard patterns, combined risk cues, negation, tense and a middle band.

Rules run on the normalised text and win over the classifier, because missing an emergency costs
far more than a false alarm. A rule names a hazard from a fixed vocabulary
(`nlu.types.HAZARDS`); the dialogue picks its safety instructions from it.

Three verdicts come out of `assess`:
- a **hazard**: an emergency now (gas smelt, water reaching the electrics, a person threatened...);
- a **risk**: a possible danger the text does not settle (water on the floor, a detector ringing,
  a lift stopped between floors): the intent stays the classifier's and the dialogue asks one
  safety question;
- a **look-alike**: danger words that are not a danger now (a denied smell, a flood told as
  history, a stain, a detector's battery, a neighbour smoking), which overrules a classifier that
  learnt those words as emergency words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_PERSON = (
    r"(?:je|on|nous|quelqu un|quelqu une|personne|personnes|gens|enfant|"
    r"enfants|bebe|fils|fille|mere|pere|mari|femme|voisin|voisine|dame|monsieur|papi|mamie|"
    r"grand mere|grand pere|someone|somebody|people|child|children|kid|kids|baby|son|daughter|"
    r"mother|father|mum|mom|dad|we|i|man|woman|person|neighbour|neighbor)"
)
_WATER = r"(?:eau|eaux|flotte|water)"
# Water that flows, not the hot-water supply or the water bill.
_FLOW = (
    r"(?<!hot )(?<!cold )(?<!facture de )(?<!factures de )(?:eau|eaux|flotte|water)"
    r"(?! chaude| froide| du robinet| potable| bill)"
)
_ELECTRICS = (
    r"(?:prises?|multiprises?|tableau electrique|compteur electrique|disjoncteurs?|luminaires?|"
    r"lampes?|plafonniers?|lustres?|spots?|fils electriques|fils du plafonnier|gaine electrique|"
    r"sockets?|plug sockets?|lights?|light fittings?|ceiling rose|fuse ?box|wiring|electrics|"
    r"interrupteurs?|lumieres?|light switch(?:es)?|switch(?:es)?)"
)
_SYMPTOMS = (
    r"(?:mal a la tete|maux de tete|vertiges?|vomi\w*|nausee\w*|malaises?|dizzy|sick|"
    r"headaches?|nause\w*|intoxi\w*)"
)
_APPLIANCE_FLAME = (
    r"^(?=.*\b(?:chaudiere|gaziniere|cuisiniere|plaques?|bruleurs?|chauffe eau|four|boiler|"
    r"cooker|hob|oven|stove)\b)(?:.*\b(?:flamme|flame)s?\b.{0,30}\b(?:jaunes?|bleues?|"
    r"yellow|blue)\b|.*\b(?:yellow|blue) flames?\b)"
)
_HEATERS = r"(?:chaudiere|chauffe eau|poele|boiler|gas fire|heater|water heater)"

# A smoke detector that beeps for its battery or rings for nothing is a repair; a detector ringing
# with smoke around is not excused by this.
_DETECTOR_FAULT = (
    r"\b(?:detecteurs?|daaf|detectors?|alarms?|alarmes?)\b.{0,60}\b(?:piles?|batterie|battery|"
    r"bip\w*|beep\w*|chirp\w*|pour rien|sans raison|ne marche|ne fonctionne|install\w*|"
    r"changer|remplacer|obligatoire|compulsory|mandatory|acheter|buy|low|keeps going off|false|"
    r"for nothing|broken|"
    r"se declenche des que|trop pres|cuire|toast|cooking)\b"
    r"|\b(?:piles?|batterie|battery|bip\w*|beep\w*|chirp\w*)\b.{0,40}\b(?:detecteurs?|daaf|"
    r"detectors?|alarms?)\b"
)
# Smoke that comes from a person smoking or from cooking outside: a nuisance, not a fire.
_SMOKING = (
    r"\bcigarettes?\b|\bclopes?\b|\bshit\b|\bjoints?\b|\bchicha\b|\bcannabis\b|"
    r"\bweed\b|\btabac\b|\bfumeurs?\b|\bfument\b|\bbarbecues?\b|\bbbq\b|\bfags?\b|\bvap\w*\b|"
    r"\b(?:voisin|voisine|voisins|jeunes|gens|il|elle|ils|elles)\s+(?:\w+\s+){0,3}fume(?:nt)?\b|"
    r"\bsmok(?:er|ers|es)\b|\bpot\b|\bne fume\b|\bil fume\b|\bils fument\b|\bpoisson\b|"
    r"\b(?:people|they|he|she|kids|guys?)\s+(?:\w+\s+){0,4}smoking\b|"
    r"\bbonfires?\b|\bfeux? de jardin\b|\bgarden fires?\b|"
    r"\b(?:and|they|people|kids|youths|lads) smoke\b"
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One hazard pattern with the look-alikes that must not trigger it."""

    hazard: str
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None
    # Cheap substring test run first: most messages contain none of these, and the person
    # patterns are slow to fail on long texts.
    needles: tuple[str, ...] = ()
    # A negation before the match denies it ("pas d'odeur de gaz"); not for rules whose match
    # itself says something is missing ("plus de courant" with an oxygen machine).
    negatable: bool = True

    def matches(self, normalized: str) -> list[tuple[int, int]]:
        if self.needles and not any(n in normalized for n in self.needles):
            return []
        return [m.span() for m in self.pattern.finditer(normalized)]

    def fires(self, normalized: str, context: Context | None = None) -> bool:
        spans = self.matches(normalized)
        if not spans:
            return False
        context = context or Context.of(normalized)
        if all(context.denies(span, self) for span in spans):
            return False
        return not (self.unless and self.unless.search(normalized))

    def excused(self, normalized: str, context: Context | None = None) -> bool:
        """The pattern matches but the context says it is no danger now."""
        spans = self.matches(normalized)
        if not spans:
            return False
        context = context or Context.of(normalized)
        if all(context.denies(span, self) for span in spans):
            return True
        return bool(self.unless and self.unless.search(normalized))


# -- what makes a danger word harmless -----------------------------------------------------------

# A negation just before the danger: "pas d'odeur de gaz", "no smoke", "il n'y a personne dedans".
_NEGATION = _re(
    r"\b(?:pas (?:de|le|la|une?|du|des)|(?<!en )plus (?:de|du)|aucune?|sans|ni|no|not any|"
    r"never|jamais|nobody|no one|ne y a personne|y a personne|personne ne|"
    r"ne sent (?:pas|plus|rien|jamais)|"
    r"does not smell|do not smell|can not smell|not smell|rien ne)\b"
)
NEGATION_REACH = 25
# History: the danger happened and is over ("l'an dernier", "weeks ago", "on a failli").
_HISTORY = _re(
    r"\b(?:le annee derniere|le an dernier|le mois dernier|la semaine derniere|le hiver dernier|"
    r"le ete dernier|last (?:year|month|week|winter|summer|time)|\d+ (?:weeks|months|years) ago|"
    r"(?:weeks|months|years) ago|il y a (?:\d+|quelques|plusieurs) (?:semaines|mois|ans)|"
    r"(?:depuis|apres) (?:le|la|une|un) (?:incendie|inondation|degat|degats|fuite)|"
    r"after the (?:fire|flood|leak)|failli|almost|nearly|"
    r"(?:vieux|ancien|old|previous) (?:court circuit|incendie|fire|flood|inondation|degat|fuite|"
    r"leak)|porte plainte|depose plainte|main courante|filed a complaint)\b"
)
HISTORY_REACH = 90
# ...unless it is happening again.
_ONGOING = _re(
    r"\b(?:encore(?! pas)|again|de nouveau|recommence\w*|en ce moment|right now|maintenant|"
    r"actuellement|en cours|is back|est revenue?|revient|reviens)\b"
)
# A trace or a stain of an old event: "une auréole", "water marks", "noircie".
_TRACE = _re(r"\b(?:taches?|aureoles?|traces?|marques?|marks?|stains?|noircie?s?|auréoles?)\b")
TRACE_REACH = 30
TRACE_HAZARDS = frozenset({"flooding", "water_electric", "fire", "sparks", "smoke"})
# A question about a hypothetical danger: "si un jour ça sent le gaz", "if there's ever a leak".
_HYPOTHETICAL = _re(
    r"\b(?:si un jour|si jamais|un jour(?! que)|au cas ou|if there is ever|if ever|ever|in case|"
    r"si quelqu un (?:reste|se retrouve)|if someone (?:gets|ever)|responsible for|obligatoire|"
    r"c est a qui|a qui de|who pays|qui paie|qui doit|assurance couvre|couvre t elle|"
    r"couvre t il|insurance cover\w*|is it covered|est ce couvert)\b"
)
HYPOTHETICAL_REACH = 60


@dataclass(frozen=True, slots=True)
class Context:
    """Where the text negates, tells history, shows traces or asks about a hypothesis."""

    negations: tuple[tuple[int, int], ...]
    history: tuple[tuple[int, int], ...]
    traces: tuple[tuple[int, int], ...]
    hypotheses: tuple[tuple[int, int], ...]
    ongoing: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, normalized: str) -> Context:
        def spans(pattern: re.Pattern[str]) -> tuple[tuple[int, int], ...]:
            return tuple(m.span() for m in pattern.finditer(normalized))

        return cls(
            negations=spans(_NEGATION),
            history=spans(_HISTORY),
            traces=spans(_TRACE),
            hypotheses=spans(_HYPOTHETICAL),
            ongoing=spans(_ONGOING),
        )

    def denies(self, span: tuple[int, int], rule: Rule) -> bool:
        """True when this match of `rule` is denied, history, a trace or a hypothesis."""
        start = span[0]
        if rule.negatable and any(s <= start <= e + NEGATION_REACH for s, e in self.negations):
            return True
        if _near(span, self.hypotheses, HYPOTHETICAL_REACH):
            return True
        if _near(span, self.history, HISTORY_REACH) and not _near(span, self.ongoing, 40):
            return True
        return rule.hazard in TRACE_HAZARDS and _near(span, self.traces, TRACE_REACH)


def _near(span: tuple[int, int], others: Iterable[tuple[int, int]], reach: int) -> bool:
    start, end = span
    return any(s - reach <= end and start <= e + reach for s, e in others)


# -- hazards -------------------------------------------------------------------------------------

_LIFT = r"(?:ascenseur|lift|elevator|cabine)"
_STUCK = r"(?:bloquee?s?|coincee?s?|enfermee?s?|stuck|trapped)"
_PERSON_STUCK = (
    rf"\b{_PERSON}\s+(?:\w+\s+){{0,3}}(?:est|sont|suis|sommes|reste|restee|is|are|am|got)?\s*"
    rf"{_STUCK}\b(?!\s+(?:par|avec|pour|by|with|for|dehors|outside|out|sans|in traffic|"
    r"dans les bouchons|at (?:school|work|the airport)|au (?:travail|boulot|bureau)|a le ecole))"
    r"|\bsomeone (?:is )?(?:stuck|trapped)\b|\btrapped\b"
    rf"|\b(?:avec\s+)?(?:des |un |une |mon |ma |mes |le |la )?{_PERSON}\s+dedans\b"
    rf"|\b(?:people|someone|somebody|children|kids|{_PERSON}) (?:still )?inside\b"
)
_THINGS_STUCK = _re(
    r"\bdehors\b|\blocked out\b|\bsans (?:mes )?cles\b|"
    r"\b(?:porte|fenetre|volet|serrure|cle|door|window|key|voiture|car)\s+(?:\w+\s+)?"
    r"(?:est |is )?(?:bloquee?|coincee?|stuck)\b"
)
_NOBODY_INSIDE = r"\b(?:ne y a personne|y a personne|personne ne est|nobody|no one|vide|empty)\b"
_TRAPPED_NEEDLES = ("bloq", "coinc", "enferm", "stuck", "trapped", "locked", "dedans", "inside")

_RULES: tuple[Rule, ...] = (
    Rule(
        "gas",
        _re(
            r"\b(?:sen[st]?|sentir|senti|sentait|sentaient|odeur|odeurs|pue|puent|puait|fuite|fuites|"
            r"smell|smells|smelling|"
            r"smelt|leak|leaking)\b(?:\s+\w+){0,3}\s+(?:gaz|gas)\b"
            r"|\b(?:gaz|gas)\s+(?:smell|leak|odou?r)|\balerte gaz\b|\bgas alert\b"
            # Second-hand: the gas network, the fire service or a neighbour says so.
            r"|\b(?:grdf|gdf|pompiers|gas man|gas board|gas engineer|cadent|agent du gaz|"
            r"technicien du gaz)\b.{0,100}\b(?:fuite|leak\w*|evacu\w*|sent|smell\w*|odeur|"
            r"coupe\w* le gaz|cut off the gas|shut off the gas|get out)\b"
            r"|\b(?:fuite|leak|evacu\w*)\b.{0,100}\b(?:grdf|pompiers|gas man|gas board)\b"
        ),
    ),
    # Gas named somewhere, then a strong smell: "pas d'odeur hier mais ce soir ça sent fort".
    Rule(
        "gas",
        _re(
            r"\b(?:ca|it)\s+(?:sent|smells)\s+(?:tres |vraiment |trop )?(?:fort|strongly)\b"
            r"(?!\s+(?:la|le|les|de|the|of)\b)"
        ),
        needles=("gaz", "gas"),
    ),
    Rule(
        "carbon_monoxide",
        _re(
            rf"\b(?:monoxyde|carbon monoxide|detecteur (?:de )?co|co (?:alarm|detector))\b.{{0,80}}"
            rf"\b(?:sonne\w*|declench\w*|going off|gone off|went off|{_SYMPTOMS})"
            rf"|\b{_SYMPTOMS}\b.{{0,80}}\b(?:monoxyde|carbon monoxide|detecteur (?:de )?co|"
            rf"co (?:alarm|detector)|{_HEATERS})\b"
            rf"|\b{_HEATERS}\b.{{0,80}}\b{_SYMPTOMS}"
        ),
        _re(r"\b(?:piles?|batterie|battery|pile faible|low battery|installer|fitting|fit one)\b"),
    ),
    Rule(
        "fire",
        _re(
            r"\bau feu\b|\bil y a (?:le |du )?feu\b|\bincendies?\b|\ben feu\b|\bprend feu\b|"
            r"\bpris feu\b|\bflammes?\b|\ble feu (?:a pris|dans|au|a la|a le|chez)\b|"
            r"\bfeu de (?:voiture|poubelles?|cave|appartement|cuisine|local)\b|"
            r"\b(?:au secours|urgent|urgence|vite|help)\b.{0,20}\b(?:le |du )?feu\b|"
            r"\bbrule\b(?:\s+\w+){0,2}\s+(?:appartement|cuisine|immeuble)|"
            r"\bon fire\b|\bfire\b(?!\s+(?:alarm|extinguisher|door|exit|safety|drill|risk|up))|"
            r"\bflames?\b|\bburning\b|"
            r"\b(?:poubelles?|voitures?|caves?|appartement|immeuble|local|cuisine|scooters?|"
            r"containers?|conteneurs?|matelas|bins?|car|flat)\s+(?:\w+\s+)?"
            r"(?:brule|brulent|crame|crament|flambe|flambent)\b"
        ),
        _re(
            r"\b(?:extincteur|exercice|alarme incendie|porte coupe feu|coupe feu|detecteur|"
            r"consignes?|fire drill|feu de artifice|feux de artifice|barbecue|cheminee|"
            r"evacuation incendie|assurance incendie|fire safety|veilleuse|pilot light|"
            r"bonfires?)\b|"
            # The colour of a gas appliance's flame is a repair (or a risk), not a fire.
            rf"{_APPLIANCE_FLAME}"
        ),
    ),
    # Smoke described as heavy, or by what it does to the people inside, is an emergency
    # whatever else is said ("the detector rings and there is smoke everywhere").
    Rule(
        "smoke",
        _re(
            r"\b(?:fumee|fumees|smoke)\s+(?:partout|everywhere|noire|epaisse|black|thick)\b|"
            r"\b(?:beaucoup de|plein de|pleine de|remplie? de|envahie? (?:de|par)|full of)"
            r"\s+(?:la )?(?:fumee|smoke)\b|"
            r"\b(?:fumee|smoke)\b.{0,30}\b(?:envahit|envahi|remplit|fills?|filling)\b|"
            r"\b(?:filling|filled|full) (?:up )?with smoke\b|\benfumee?s?\b|\bsmoke filled\b"
        ),
        _re(_SMOKING),
    ),
    Rule(
        "smoke",
        _re(
            r"\b(?:fumee|fumees|smoke|smoky)\b.{0,80}\b(?:respir\w*|tousse\w*|toux|etouffe\w*|"
            r"asphyxi\w*|voit (?:plus|rien)|cough\w*|breath\w*|choking|can not see|cannot see|"
            r"pique les yeux)"
            r"|\b(?:respir\w*|tousse\w*|etouffe\w*|voit plus rien|voit rien|ne voit|"
            r"cough\w*|breath\w*|choking|can not see|cannot see)\b.{0,80}\b(?:fumee|smoke)\b"
        ),
        _re(_SMOKING),
        negatable=False,
    ),
    Rule(
        "smoke",
        _re(r"\bfumee\b|\bfume\b(?!r)|\bfumees\b|\bsmoke\b|\bsmoking\b|\bsmoky\b"),
        _re(rf"{_DETECTOR_FAULT}|{_SMOKING}"),
    ),
    Rule(
        "water_electric",
        _re(
            rf"\b(?:{_FLOW}|coule|coulent|goutte|gouttes|ruisselle|dripping|pouring|"
            rf"gushing)\b.{{0,60}}\b{_ELECTRICS}\b"
            rf"|\b(?:tableau electrique|compteur electrique|prises?|multiprises?|lustre|"
            rf"plafonnier|light fittings?|sockets?|fuse ?box)\b.{{0,40}}\b(?:{_FLOW}|"
            r"coule|goutte|ruisselle|dripping|pouring)\b"
            rf"|\b(?:fuite|fuit|leak\w*)\b.{{0,30}}\b(?:tombe|coule|goutte|drips?|dripping)\w*\b"
            rf".{{0,30}}\b{_ELECTRICS}\b"
            r"|\b(?:fils?|cables?)(?: electriques?)? denudes?\b.*\beau\b"
            r"|\bcables?\b.{0,40}\bdans le eau\b"
        ),
    ),
    Rule(
        "flooding",
        _re(
            r"\binond\w*\b|\bflood\w*\b|\beau (?:partout|coule de partout)\b|"
            r"\b(?:eau|ca|il)\s+(?:coule|ruisselle|tombe|pisse|gicle|jaillit)\s+(?:a flots?|"
            r"partout|du plafond|des murs|du plafonnier|de partout)|"
            r"\bdegats? des eaux en cours\b|\bsous le eau\b|"
            r"\bwater (?:everywhere|pouring|gushing|coming through)\b|"
            r"\btuyau (?:a|qui a) (?:eclate|pete)\b|\b(?:pipe|pipes) (?:burst|has burst)\b|"
            r"\bwater (?:is )?(?:pouring|gushing|streaming|flooding)\b|"
            r"\bburst pipe\b|\bcanalisation (?:a |qui a )?(?:eclate|pete)\b|"
            # How much water, and where it goes.
            rf"\b{_FLOW}\b.{{0,60}}\b(?:partout|piscine|cascade|a flots?|torrent|"
            r"envahit|envahi|se repand\w*|tout le (?:logement|appartement|couloir|salon)|"
            r"sous la porte|dans les escaliers|dans le escalier|"
            r"everywhere|pouring|gushing|rising|coming in|down the stairs|under the door|"
            r"all over)\b|"
            rf"\b{_FLOW}\s+(?:qui\s+)?(?:monte|montent|continue de monter|continue de couler|"
            r"keeps rising|is rising)\b|"
            r"\b(?:\d+ ?(?:cm|centimetres?|centimeters?|inches)|seaux|ecope\w*|buckets|bailing)\b"
            rf".{{0,80}}\b(?:{_FLOW}|deborde\w*|remonte\w*|coule)\b|"
            rf"\b(?:{_FLOW}|remonte\w*|deborde\w*)\b.{{0,80}}\b(?:seaux|ecope\w*|buckets)\b|"
            r"\b(?:remonte\w*|refoule\w*|deborde\w*)\b.{0,60}\b(?:partout|tout le|logement|"
            r"appartement|couloir|salon)\b|"
            r"\bcomme une douche\b|\ben cascade\b|\ba gros bouillons\b|\bc est un torrent\b|"
            r"\ba grosses gouttes\b|\ba gros jets?\b|\bgicle\w*\b|\bjaillit\b|"
            rf"\b{_FLOW}\s+(?:qui\s+)?(?:sort|sortent)\s+(?:du mur|des murs|du plafond|du sol|"
            r"de partout|du plancher)\b"
        ),
        # An insurance claim for an old flood is history (denied above); only a flood zone is left.
        _re(r"\b(?:zone inondable|flood zone|flood risk area)\b"),
    ),
    Rule(
        "threat",
        _re(
            r"\b(?:menace\w*|threaten\w*)\b.{0,60}\b(?:couteau|arme|tuer|mort|knife|gun|kill|"
            r"batte|barre)\b"
            r"|\b(?:couteau|arme|knife|gun|machette|barre de fer|batte)\b.{0,60}\b(?:menace\w*|"
            r"tape|frappe|crie|threat\w*|attack\w*|banging|coming)\b"
            r"|\b(?:va me tuer|veut me tuer|vais me faire tuer|going to kill|threatening to kill|"
            r"kill me|me tuer|nous tuer|la tuer|le tuer)\b"
            r"|\b(?:me frappe|nous frappe|la frappe|le frappe|me bat|nous bat|hitting me|"
            r"beating me|beats me|hits me|attacking me|agresse\w*|attacked|assaulted|"
            r"violences? conjugales?|domestic violence)\b"
        ),
    ),
    Rule(
        "trapped_lift",
        _re(
            r"\b(?:bloquee?s?|coincee?s?|enfermee?s?|stuck|trapped|locked)\s+(?:\w+\s+){0,2}"
            r"(?:dans|a le interieur|in|inside)\s+(?:le |l |un |the |a )?"
            rf"{_LIFT}\b"
            rf"|\b{_LIFT}\b.{{0,60}}(?:{_PERSON_STUCK})"
            rf"|(?:{_PERSON_STUCK}).{{0,60}}\b{_LIFT}\b"
            r"|\b(?:crie\w*|appel\w* a le aide|pleure\w*|screaming|shouting|banging|crying)\b"
            rf".{{0,30}}\b(?:dans|in) (?:le |the )?{_LIFT}\b"
        ),
        _re(rf"{_THINGS_STUCK.pattern}|{_NOBODY_INSIDE}"),
        needles=_TRAPPED_NEEDLES,
    ),
    Rule(
        "trapped",
        _re(
            rf"{_PERSON_STUCK}"
            r"|\b(?:se est|se sont|me suis|nous sommes|te es)\s+(?:\w+\s+)?enferme\w*\b"
            r"|\blocked (?:himself|herself|themselves|in)\b"
        ),
        _THINGS_STUCK,
        needles=_TRAPPED_NEEDLES,
    ),
    Rule(
        "life_support",
        _re(
            r"\b(?:oxygene|oxygen|dialyse|dialysis|respirateur|ventilator|concentrateur|"
            r"assistance respiratoire|appareil medical|medical equipment|lit medicalise)\b.{0,100}"
            r"\b(?:coupure|plus de (?:courant|electricite|jus)|pas de (?:courant|electricite)|"
            r"power|electricity|panne de (?:courant|electricite)|panne electrique|batterie|"
            r"battery|(?:electricite|courant|plombs) (?:a |vient de |viennent de )?saute\w*|"
            r"coupe\w* (?:le |la )?(?:courant|electricite)|cut off the (?:power|electricity))\b"
            r"|\b(?:coupure|plus de (?:courant|electricite)|pas de (?:courant|electricite)|"
            r"power|electricity|panne de (?:courant|electricite)|panne electrique|"
            r"(?:electricite|courant|plombs) (?:a |vient de |viennent de )?saute\w*|"
            r"coupe\w* (?:le |la )?(?:courant|electricite)|cut off the (?:power|electricity))\b"
            r".{0,100}"
            r"\b(?:oxygene|oxygen|dialyse|dialysis|respirateur|ventilator|concentrateur|"
            r"assistance respiratoire|appareil medical|medical equipment)\b"
        ),
        negatable=False,
    ),
    Rule(
        "danger",
        _re(
            r"\ben danger\b|\bdanger de mort\b|\bin danger\b|\bdanger imminent\b|"
            r"\bva se effondrer\b|\bse effondre\b|\bse est effondre\w*\b|\bse ecroule\b|"
            r"\bcollapsing\b|"
            r"\bcollapsed\b|\belectrocut\w*\b|\binconscient\w*\b|\bunconscious\b|"
            r"\b(?:tombee?s?|par terre|au sol|allongee?s?|fallen|collapsed|lying|on the floor)\b"
            r".{0,40}\b(?:ne (?:bouge|repond|respire) plus|not moving|not responding|"
            r"not breathing)\b|"
            r"\bne respire plus\b|\bnot breathing\b|"
            # Fallen and cannot get up: an elderly person alone on the floor.
            r"\b(?:ne |n )?(?:arrive|peut|peux) (?:pas|plus) (?:a )?se (?:re)?lever\b|"
            r"\b(?:ne |n )?(?:arrive|peut|peux) (?:pas|plus) (?:a )?(?:tenir debout|bouger)\b|"
            r"\b(?:can not|cannot|unable to|could not) get (?:him |her |them )?up\b|"
            r"\b(?:enfant|bebe|petit|gamin|child|kid|toddler|baby)\b.{0,40}\b(?:rebord|ledge|"
            r"enjambe\w*|hanging out|leaning out|penche\w* (?:a|par) la fenetre)\b|"
            r"\b(?:blocs?|pierres|chunks|bricks|morceaux de (?:beton|facade|balcon))\b.{0,40}"
            r"\b(?:tombent|chutent|se detachent|falling)\b.{0,60}\b(?:cour|trottoir|gens|enfants|"
            r"passants|rue|entree|people|pavement|street|kids|children)\b|"
            r"\b(?:ceiling|plafond)\b.{0,20}\b(?:fell|fallen|came down|est tombe\w*)\b"
        ),
        _re(r"\b(?:pas de danger|aucun danger|no danger|pas en danger|not in danger)\b"),
    ),
    Rule(
        "sparks",
        _re(
            r"\betincelles?\b|\bsparks?\b|\bsparking\b|\bcourt circuit\w*\b|"
            r"\b(?:prise|prises|tableau electrique|disjoncteur|compteur|fils?|cables?|socket|"
            r"plug|outlet|wires?|wiring)\s+(?:\w+\s+){0,3}(?:fume|fument|grille|brule|crame|"
            r"noirci|fond|smoking|burning|melting|melted|a claque|went bang)\b|"
            r"\bodeur de (?:brule|plastique brule|crame)\b.*\b(?:prise|tableau|compteur)\b|"
            r"\bsmell of burning\b|"
            r"\b(?:crepit\w*|gresill\w*|crackl\w*)\b.{0,60}\b(?:brule|fondu|burning|melt\w*|"
            r"fume\w*|smok\w*)\b"
        ),
    ),
)

# -- the middle band: possible danger, one safety question ----------------------------------------

_RISKS: tuple[Rule, ...] = (
    Rule(
        "water_electric",
        _re(
            rf"\b(?:{_WATER}|fuite|fuit|leak\w*|coule|goutte|infiltration)\b.{{0,200}}"
            rf"\b{_ELECTRICS}\b"
            rf"|\b{_ELECTRICS}\b.{{0,200}}\b(?:{_WATER}|fuite|fuit|leak\w*|coule|goutte)\b"
        ),
        _re(r"\b(?:facture|bill|factures)\b"),
    ),
    Rule(
        "flooding",
        _re(
            rf"\b{_WATER}\b.{{0,40}}\b(?:par terre|au sol|sur le sol|on the floor|onto the floor|"
            r"all over the floor)\b|"
            # "ça coule sur le parquet": water spreading on a floor, how much the text leaves open.
            r"\b(?:coule\w*|ruissel\w*|goutte\w*|se repand\w*|s etale\w*)\b.{0,20}"
            r"\b(?:par terre|au sol|sur le (?:sol|parquet|carrelage|plancher|lino))\b|"
            r"\b(?:eau|toilettes|wc|cuvette|baignoire|evier|lavabo|douche|bath|sink|toilet)\b"
            r".{0,30}\b(?:deborde\w*|overflow\w*)\b|"
            rf"\b(?:deborde\w*|overflow\w*)\b.{{0,30}}\b{_WATER}\b|"
            r"\bfuite (?:importante|enorme|grosse|grave)\b|"
            r"\b(?:big|bad|major|huge) leak\b|\bbeaucoup de eau\b|\b(?:lots of|a lot of) water\b|"
            r"\b(?:eau|ca)\s+(?:\w+\s+){0,2}(?:coule|tombe|goutte|passe)\w*\b.{0,30}\bplafond\b|"
            r"\b(?:water|dripping|leaking|pouring|coming)\b.{0,40}\bceiling\b|"
            r"\bdegats? des eaux\b|\bwater damage\b"
        ),
        _re(r"\b(?:assurance|attestation|constat|insurance|facture|bill)\b"),
    ),
    Rule(
        "carbon_monoxide",
        _re(
            r"\bmonoxyde\b|\bcarbon monoxide\b|\bdetecteur (?:de )?co\b|\bco (?:alarm|detector)\b|"
            r"\b(?:flamme|flame)s?\b.{0,30}\b(?:jaunes?|yellow|orange)\b|\byellow flames?\b"
        ),
    ),
    Rule(
        "gas",
        _re(
            r"\b(?:oeuf pourri|rotten eggs?|odeur bizarre|sent bizarre|odeur etrange|"
            r"strange smell|weird smell|odd smell|funny smell)\b|"
            r"\b(?:gaz|gas)\b.{0,60}\b(?:bizarre|etrange|strange|weird|odeur|sent|smell\w*)\b"
        ),
        _re(r"\b(?:facture|contrat|releve|abonnement|bill|reading|tarif)\b"),
    ),
    Rule(
        "smoke",
        _re(
            r"\b(?:detecteurs?|alarmes?|smoke alarm|fire alarm|detectors?)\b.{0,40}"
            r"\b(?:sonne\w*|declench\w*|going off|went off|goes off|ringing)\b|"
            r"\b(?:sent|odeur|smell\w*)\s+(?:le |de |of )?(?:brule|burning|crame|roussi)\b"
        ),
        _re(_DETECTOR_FAULT),
    ),
    Rule(
        "trapped_lift",
        _re(
            rf"\b{_LIFT}\b.{{0,40}}\b(?:bloque|coince|arrete|stuck|stopped)\w*\b.{{0,20}}"
            r"\b(?:entre (?:2|deux) etages|between (?:2 |two )?floors)\b"
        ),
    ),
    Rule(
        "sparks",
        _re(
            r"\b(?:gresill\w*|crepit\w*|buzz\w*|crackl\w*|chauffe|chaude|brulante|hot)\b.{0,30}"
            r"\b(?:prises?|tableau|compteur electrique|disjoncteur|sockets?|plugs?|fuse ?box)\b|"
            r"\b(?:prises?|tableau electrique|compteur electrique|disjoncteur|sockets?|plugs?|"
            r"fuse ?box)\b.{0,30}\b(?:gresill\w*|crepit\w*|buzz\w*|crackl\w*|chauffe|brulante|"
            r"hot)\b"
        ),
    ),
    Rule(
        "danger",
        _re(
            r"\bfissures?\b.{0,40}\b(?:plafond|balcon|mur|facade|ceiling)\b|"
            r"\b(?:plafond|ceiling)\b.{0,20}\b(?:gonfle|bombe|menace de tomber|va tomber|"
            r"sagging|bulging)\b|"
            r"\b(?:personne agee|voisine agee|voisin age|elderly)\b.{0,60}"
            r"\b(?:ne repond (?:pas|plus)|pas de nouvelles|not answering|no answer)\b"
        ),
    ),
    Rule(
        "threat",
        _re(
            r"\b(?:menace\w*|threaten\w*)\b|"
            r"\b(?:peur|scared|afraid|frightened)\b.{0,60}\b(?:voisin|mari|ex|compagnon|"
            r"neighbour|neighbor|partner|husband)\b"
        ),
    ),
)


# Substrings one of which every match of a hazard's patterns contains: a message with none of
# them skips that hazard's regular expressions, which most messages do for most hazards.
# tests/nlu/test_rules.py checks on every message we have that they change no verdict.
_SYMPTOM_NEEDLES = ("tete", "vertige", "vomi", "nause", "malaise", "dizzy", "sick", "headache")
_CO_NEEDLES = ("monoxyde", "carbon", "detecteur co", "detecteur de co", "co alarm", "co detector")
_LIFT_NEEDLES = ("ascenseur", "lift", "elevator", "cabine")
_RULE_NEEDLES: dict[str, tuple[str, ...]] = {
    "gas": ("gaz", "gas", "grdf", "gdf", "pompier", "cadent"),
    "carbon_monoxide": (*_CO_NEEDLES, *_SYMPTOM_NEEDLES, "intoxi"),
    "fire": ("feu", "incendie", "flamm", "flame", "brul", "fire", "burn", "cram", "flamb"),
    "smoke": ("fum", "smok"),
    "water_electric": (
        *("eau", "water", "flotte", "coul", "goutt", "ruissel", "drip", "pouring", "gush"),
        *("fuit", "leak", "denud"),
    ),
    "flooding": (
        *("inond", "flood", "eau", "water", "flotte", "coul", "ruissel", "tomb", "pisse", "gicle"),
        *("jaill", "degat", "tuyau", "pipe", "burst", "canalisation", "cm", "centim", "inch"),
        *("seau", "ecope", "bucket", "bailing", "remont", "refoul", "debord", "douche"),
        *("cascade", "bouillon", "torrent", "goutt", "jet"),
    ),
    "threat": (
        *("menac", "threat", "couteau", "arme", "knife", "gun", "machette", "barre", "batte"),
        *("tuer", "kill", "frapp", "me bat", "nous bat", "hitting", "beating", "beats", "hits"),
        *("attack", "agress", "assault", "violence"),
    ),
    "trapped_lift": (*_TRAPPED_NEEDLES, *_LIFT_NEEDLES),
    "trapped": _TRAPPED_NEEDLES,
    "life_support": ("oxyg", "dialys", "respirat", "ventilat", "concentrat", "medical"),
    "danger": (
        *("danger", "effondr", "ecroul", "collaps", "electrocut", "inconscient", "unconscious"),
        *("bouge", "repond", "respire", "moving", "responding", "breathing", "lever", "debout"),
        *("get ", "rebord", "ledge", "enjamb", "hanging", "leaning", "penche", "bloc", "pierre"),
        *("chunk", "brick", "morceaux", "plafond", "ceiling"),
    ),
    "sparks": (
        *("etincel", "spark", "court circuit", "prise", "tableau", "disjonct", "compteur", "fil"),
        *("cable", "socket", "plug", "outlet", "wire", "odeur de", "smell of burning", "crepit"),
        *("gresill", "crackl"),
    ),
}
_RISK_NEEDLES: dict[str, tuple[str, ...]] = {
    "water_electric": ("eau", "water", "flotte", "fuit", "leak", "coul", "goutt", "infiltr"),
    "flooding": (
        *("eau", "water", "flotte", "toilet", "wc", "cuvette", "baignoire", "evier", "lavabo"),
        *("douche", "bath", "sink", "debord", "overflow", "fuite", "leak", "plafond", "ceiling"),
        *("degat", "damage", "coul", "ruissel", "goutt", "repand", "etale"),
    ),
    "carbon_monoxide": (*_CO_NEEDLES, "flamm", "flame"),
    "gas": ("pourri", "rotten", "bizarre", "etrange", "strange", "weird", "odd", "funny", "ga"),
    "smoke": ("detecteur", "alarm", "detector", "sent", "odeur", "smell"),
    "trapped_lift": _LIFT_NEEDLES,
    "sparks": ("prise", "tableau", "compteur", "disjonct", "socket", "plug", "fuse"),
    "danger": ("fissure", "plafond", "ceiling", "agee", "voisin age", "elderly"),
    "threat": ("menac", "threat", "peur", "scared", "afraid", "frighten"),
}
RULES: tuple[Rule, ...] = tuple(replace(r, needles=_RULE_NEEDLES[r.hazard]) for r in _RULES)
RISKS: tuple[Rule, ...] = tuple(replace(r, needles=_RISK_NEEDLES[r.hazard]) for r in _RISKS)


# Contexts where an emergency word is harmless: equipment, bills, drills, things (not people) stuck.
_HARMLESS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (
        (),
        re.compile(
            rf"{_DETECTOR_FAULT}|"
            r"\b(?:exercice|extincteurs?|coupe feu|fire door|fire drill|facture|fournisseur|"
            r"abonnement|bill|compteur de gaz|gas meter|barbecues?|gas engineer|gas safety|"
            r"boiler service|annual service|entretien (?:annuel )?de la chaudiere|"
            r"visite (?:annuelle|de entretien)|avis de coupure|coupure de gaz pour travaux)\b"
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


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the emergency layer makes of a text: a hazard now, a possible one, or neither."""

    hazard: str | None = None
    risk: str | None = None


def _first(rules: tuple[Rule, ...], normalized: str) -> str | None:
    context: Context | None = None
    for rule in rules:
        if not rule.matches(normalized):
            continue
        # The context is only worth reading once some pattern matched.
        context = context or Context.of(normalized)
        if rule.fires(normalized, context):
            return rule.hazard
    return None


def emergency_rule(normalized: str) -> str | None:
    """The hazard of the first rule that fires on the normalised text, or None."""
    return _first(RULES, normalized)


def risk_cue(normalized: str) -> str | None:
    """The hazard a text makes possible without settling it (the middle band), or None."""
    return _first(RISKS, normalized)


def look_alike(normalized: str) -> bool:
    """True when emergency words appear only in a harmless context (a detector's battery...).

    The classifier learns "fumee" or "gaz" as emergency words; this lets the engine overrule it
    when the context says equipment, bills, a stuck door, a denial, history or a trace. Call it
    only when no rule fired.
    """
    for needles, pattern in _HARMLESS:
        if (not needles or any(n in normalized for n in needles)) and pattern.search(normalized):
            return True
    context = Context.of(normalized)
    return any(rule.excused(normalized, context) for rule in (*RULES, *RISKS))


def assess(whole: str, parts: Iterable[str] = ()) -> Verdict:
    """Judge a normalised message and its sentences (`parts`), each also normalised.

    Hazard rules also run sentence by sentence, so that "ça sent le gaz. Et ma facture..." is
    not excused by a harmless word from another sentence. `look_alike` is left to the caller, who
    needs it only when the classifier says emergency.
    """
    texts = [whole, *(p for p in parts if p and p != whole)]
    for text in texts:
        hazard = emergency_rule(text)
        if hazard:
            return Verdict(hazard=hazard)
    # The middle band reads the whole message only: a possible danger does not need the
    # sentence-by-sentence reading that keeps a harmless word from excusing a real one.
    return Verdict(risk=risk_cue(whole))


# Words that name a hazard, for a message the classifier calls an emergency in words no rule knows.
_HAZARD_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("gas", _re(r"\b(?:gaz|gas)\b")),
    ("fire", _re(r"\b(?:feu|incendie|flammes?|brule\w*|fire|flames?|burn\w*)\b")),
    ("smoke", _re(r"\b(?:fumee|smoke)\b")),
    ("carbon_monoxide", _re(r"\b(?:monoxyde|carbon monoxide)\b")),
    ("water_electric", _re(rf"\b{_WATER}\b.*\b{_ELECTRICS}\b")),
    ("flooding", _re(rf"\b(?:{_WATER}|fuite|leak\w*|inond\w*|flood\w*)\b")),
    ("trapped_lift", _re(rf"\b{_LIFT}\b")),
    ("sparks", _re(r"\b(?:prises?|electri\w*|sockets?|fuse ?box|wires?)\b")),
)


def guess_hazard(normalized: str) -> str:
    """The likeliest hazard for an emergency no rule named; `danger` when nothing says."""
    risk = risk_cue(normalized)
    if risk:
        return risk
    for hazard, pattern in _HAZARD_WORDS:
        if pattern.search(normalized):
            return hazard
    return "danger"


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
