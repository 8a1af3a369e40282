"""Emergency rules: they must fire on every real emergency and stay quiet on look-alikes."""

from __future__ import annotations

import pytest

from nlu.normalize import normalize
from nlu.rules import emergency_rule

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


@pytest.mark.parametrize(("text", "rule"), EMERGENCIES)
def test_emergency_fires(text: str, rule: str) -> None:
    assert emergency_rule(normalize(text)) == rule


@pytest.mark.parametrize("text", NOT_EMERGENCIES)
def test_look_alikes_do_not_fire(text: str) -> None:
    assert emergency_rule(normalize(text)) is None
