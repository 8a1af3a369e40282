"""Emergency layer: every hazard fires, negation/history/traces/hypotheses do not, the middle band.

Messages here are written for the tests (not taken from data/), so the rules are checked on
phrasings they were not tuned on line by line.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nlu.normalize import normalize
from nlu.rules import RISKS as RISKS_RULES
from nlu.rules import RULES, assess, emergency_rule, guess_hazard, look_alike, risk_cue
from nlu.types import HAZARDS

EMERGENCIES = [
    ("ça sent le gaz", "gas"),
    ("odeur de gaz dans la cage d'escalier", "gas"),
    ("I can smell gas in the hall", "gas"),
    ("au feu !", "fire"),
    ("incendie au 3ème", "fire"),
    ("ya le feu", "fire"),
    ("the flat next door is on fire", "fire"),
    ("il y a de la fumée dans le couloir", "smoke"),
    ("smoke everywhere in the stairwell", "smoke"),
    ("inondation dans la cuisine", "flooding"),
    ("l'eau coule du plafond partout", "flooding"),
    ("dégât des eaux en cours", "flooding"),
    ("my flat is flooding", "flooding"),
    ("bloqué dans l'ascenseur", "trapped_lift"),
    ("ma fille est coincée dans l'ascenseur", "trapped_lift"),
    ("we are stuck in the lift", "trapped_lift"),
    ("mon voisin est en danger", "danger"),
    ("des étincelles sortent de la prise", "sparks"),
    ("sparks from the socket", "sparks"),
]

# One message per hazard of the vocabulary the dialogue relies on, most told by their effect.
EVERY_HAZARD = [
    ("GRDF est venu, ils disent qu'il y a une fuite sur la colonne, faut sortir", "gas"),
    ("des flammes sortent du vide-ordures", "fire"),
    ("on étouffe, la fumée rentre sous la porte et on tousse", "smoke"),
    ("on écope avec des seaux, l'eau remonte par la douche", "flooding"),
    ("l'eau goutte du plafond sur la multiprise du salon", "water_electric"),
    ("le disjoncteur a claqué avec des étincelles", "sparks"),
    ("le détecteur de monoxyde s'est déclenché et on a des vertiges", "carbon_monoxide"),
    ("mon père est coincé dans l'ascenseur entre le 3 et le 4", "trapped_lift"),
    ("ma petite de 4 ans s'est enfermée dans les toilettes, elle panique", "trapped"),
    ("le voisin menace mon mari avec un couteau sur le palier", "threat"),
    ("ma grand-mère a chuté et n'arrive pas à se relever", "danger"),
    ("coupure de courant et ma mère a un concentrateur d'oxygène", "life_support"),
]

# Combined cues: neither word alone is an emergency, the two together are.
COMBINED = [
    ("le salon est une piscine, il y a de l'eau partout sous la porte", "flooding"),
    ("there's 5 cm of water in the kitchen and it's rising", "flooding"),
    ("water's dripping onto the fuse box from upstairs", "water_electric"),
    ("smoke in the corridor, we can't breathe", "smoke"),
    ("la fumée est telle qu'on ne voit plus rien dans l'escalier", "smoke"),
    ("the fire brigade came and said there's a gas leak, we have to get out", "gas"),
    ("ma voisine dit que ça sent le gaz sur le palier", "gas"),
    ("the gas man says there's a leak in the block", "gas"),
    ("my partner is beating me and I'm locked in the bedroom", "threat"),
    ("un homme crie qu'il va me tuer derrière ma porte", "threat"),
    ("power cut and my husband is on home dialysis", "life_support"),
    ("my dad fell in the bathroom and can't get up", "danger"),
    ("pas d'odeur de gaz ce matin mais ce soir ça sent très fort", "gas"),
]

NOT_EMERGENCIES = [
    "mon radiateur ne chauffe pas",
    "le détecteur de fumée bip, pile faible",
    "fumée de cigarette du voisin",
    "le voisin du dessus fume sur son balcon et ça rentre chez moi",
    "mon voisin fume sur le palier et ça rentre chez moi",
    "l'ascenseur est bloqué au 2ème",
    "ma porte est coincée",
    "la fenêtre est bloquée",
    "ma facture de gaz est trop élevée",
    "j'ai eu une inondation l'an dernier, l'assurance ne rembourse pas",
    "je suis enfermé dehors, ma clé a cassé",
    "pas la peine de tourner les thermostats, ils sont bloqués",
    "fuite sous l'évier",
    "my smoke detector keeps beeping",
    "the door is stuck",
    "the neighbour smokes weed all day",
    "l'exercice d'alarme incendie est quand ?",
]

# These two hold no danger pattern at all, so there is nothing for `look_alike` to excuse.
TRACE_WITHOUT_CUE = "il reste des taches d'eau au plafond, plus rien ne coule"
SMOKING_WITHOUT_CUE = "les jeunes fument dans l'escalier, ça empeste"

# A denied danger, a past event told as history, a trace, a beeping device, smoking as a nuisance,
# a question about a danger that might come one day.
LOOK_ALIKES = [
    # negation
    "aucune odeur de gaz mais la chaudière ne démarre pas",
    "no smoke or anything, the alarm just keeps chirping",
    "l'ascenseur est arrêté, il n'y a personne dedans",
    "ça ne sent pas le gaz, c'est juste que la plaque ne s'allume plus",
    # history
    "après l'incendie de la cave le mois dernier la porte n'a jamais été remplacée",
    "there was a flood last year and the floor is still warped",
    "on a failli rester coincés dans l'ascenseur hier",
    # trace or stain
    "une trace noire de fumée au-dessus du radiateur",
    TRACE_WITHOUT_CUE,
    # a device that beeps
    "le détecteur de fumée sonne pour rien dès que je cuisine",
    "the smoke alarm chirps, it needs a new battery",
    # smoking as a nuisance
    SMOKING_WITHOUT_CUE,
    "people keep smoking weed on the landing",
    # hypothesis
    "si un jour ça sent le gaz, je dois appeler qui ?",
    "who do I call if there's ever a fire in the block?",
]

# The middle band: a possible danger the text does not settle.
RISKS = [
    ("il y a de l'eau par terre dans la cuisine, je ne sais pas d'où ça vient", "flooding"),
    ("water dripping from the bathroom ceiling", "flooding"),
    ("une fuite dans la salle de bain et la prise à côté ne marche plus", "water_electric"),
    ("l'alarme incendie sonne dans le hall", "smoke"),
    ("ça sent le brûlé, je ne sais pas d'où", "smoke"),
    ("odeur bizarre d'oeuf pourri dans la cuisine", "gas"),
    ("ma gazinière fait une flamme jaune", "carbon_monoxide"),
    ("l'ascenseur est coincé entre deux étages", "trapped_lift"),
    ("la prise du salon chauffe et grésille", "sparks"),
    ("grosse fissure au plafond qui s'agrandit", "danger"),
    ("mon voisin m'a menacée dans l'escalier", "threat"),
]


@pytest.mark.parametrize(("text", "hazard"), EMERGENCIES + EVERY_HAZARD + COMBINED)
def test_emergency_fires_with_its_hazard(text: str, hazard: str) -> None:
    assert emergency_rule(normalize(text)) == hazard


def test_every_hazard_of_the_vocabulary_is_tested() -> None:
    assert {h for _, h in EVERY_HAZARD} == set(HAZARDS)
    assert {h for _, h in RISKS} <= set(HAZARDS)


@pytest.mark.parametrize("text", NOT_EMERGENCIES + LOOK_ALIKES)
def test_look_alikes_do_not_fire(text: str) -> None:
    assert emergency_rule(normalize(text)) is None


@pytest.mark.parametrize(
    "text", [t for t in LOOK_ALIKES if t not in {TRACE_WITHOUT_CUE, SMOKING_WITHOUT_CUE}]
)
def test_look_alikes_are_recognised_as_such(text: str) -> None:
    """So the engine overrules a classifier that learnt "gaz" or "fumée" as emergency words."""
    assert look_alike(normalize(text))


@pytest.mark.parametrize(
    "text",
    [
        "incendie dans la cave, ça brûle encore",
        "the flood from last year is back, water everywhere again",
        "l'inondation de l'an dernier recommence, l'eau monte dans la cave",
    ],
)
def test_history_that_happens_again_is_an_emergency(text: str) -> None:
    assert emergency_rule(normalize(text)) is not None


@pytest.mark.parametrize(("text", "hazard"), RISKS)
def test_middle_band(text: str, hazard: str) -> None:
    normalized = normalize(text)
    assert emergency_rule(normalized) is None
    assert risk_cue(normalized) == hazard
    assert assess(normalized).hazard is None
    assert assess(normalized).risk == hazard


def test_assess_reads_each_sentence() -> None:
    """A harmless word in another sentence does not excuse the danger in this one."""
    whole = normalize("Il y a de la fumée dans le couloir. Et mon détecteur bipe, pile faible")
    parts = [normalize("Il y a de la fumée dans le couloir"), normalize("mon détecteur bipe")]
    assert assess(whole).hazard is None
    assert assess(whole, parts).hazard == "smoke"


@pytest.mark.parametrize(
    "text",
    [
        "ça sent le gaz dans la cuisine, et ma facture de gaz a doublé",
        "l'eau coule sur les prises, la facture d'eau va être salée",
        "mon père est sous oxygène, EDF a coupé le courant pour une facture impayée",
        "l'appartement est inondé, je dois appeler l'assurance ?",
    ],
)
def test_a_bill_or_an_insurer_in_the_same_sentence_excuses_nothing(text: str) -> None:
    assert emergency_rule(normalize(text)) is not None


@pytest.mark.parametrize(
    ("text", "hazard"),
    [
        ("au secours venez vite", "danger"),
        ("l'ascenseur fait un bruit terrible", "trapped_lift"),
        ("le gaz !!", "gas"),
    ],
)
def test_guess_hazard_always_names_one(text: str, hazard: str) -> None:
    assert guess_hazard(normalize(text)) == hazard


def test_needles_change_no_verdict(data_dir: Path) -> None:
    """The substrings that let a message skip a hazard's patterns never hide a match."""
    from nlu.training import load_dev_data, load_test_data, load_training_data

    texts = [
        *load_training_data(data_dir).texts,
        *load_test_data(data_dir).texts,
        *load_dev_data(data_dir).texts,
        *(t for t, _ in EMERGENCIES + EVERY_HAZARD + COMBINED + RISKS),
        *NOT_EMERGENCIES,
        *LOOK_ALIKES,
    ]
    for rule in (*RULES, *RISKS_RULES):
        assert rule.needles
        bare = replace(rule, needles=())
        for text in texts:
            normalized = normalize(text)
            assert rule.matches(normalized) == bare.matches(normalized), (rule.hazard, text)
