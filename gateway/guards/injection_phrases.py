"""Phrase patterns of prompt-injection signals, per language (en, de, fr, es, it, pt).

Patterns are matched against the lower-cased text. Each group is keyed by a literal stem that
must occur in the text before its (more expensive) patterns are run.
"""

from __future__ import annotations

_W = r"(?:\s+\S+){0,3}?\s+"  # up to three filler words ("all of the", "toutes les", …)

#: instruction_override: telling the model to drop the instructions it was given.
OVERRIDE: dict[str, list[str]] = {
    "ignor": [
        # en
        r"ignor(?:e|ing)" + _W + r"(?:previous|prior|above|earlier|preceding|former|initial|original|"
        r"system|developer|your)\s+(?:instructions?|prompts?|rules|directions|directives|guidelines|"
        r"messages|context|commands)",
        r"ignore (?:all|everything|anything) (?:you were told|above|before)",
        # de
        r"ignorier(?:e|en)?" + _W + r"(?:vorherigen?|bisherigen?|obigen?|vorigen?|vorangegangenen?|"
        r"alten?|ursprünglichen?|system)\s*(?:anweisungen|instruktionen|befehle|regeln|vorgaben|prompts?)",
        # fr
        r"ignor(?:e|ez|er)" + _W + r"instructions?\s+(?:pr[ée]c[ée]dentes?|ant[ée]rieures?|ci-dessus|"
        r"initiales?|d'origine|du syst[eè]me)",
        r"ignor(?:e|ez|er)\s+(?:toutes\s+)?(?:les|tes|vos)\s+(?:instructions|consignes|r[èe]gles)",
        # es / pt / it
        r"ignor(?:a|e|ad|en|ar)" + _W + r"(?:instrucciones|instruções|instrucoes|istruzioni|indicaciones|"
        r"regras|reglas|regole)\s*(?:anteriores|previas|precedentes|precedenti|de arriba|acima|sopra|"
        r"iniciales|originais|originales|del sistema|do sistema)?",
    ],
    "disregard": [
        r"disregard (?:everything|all|anything) (?:above|before|prior|you were told)",
        r"disregard" + _W + r"(?:previous|prior|above|earlier|preceding|your|system|all)\s+"
        r"(?:instructions?|prompts?|rules|directions|guidelines|messages|context)",
    ],
    "forget": [
        r"forget" + _W + r"(?:previous|prior|above|earlier|your|all|the)\s+"
        r"(?:instructions?|prompts?|rules|directions|guidelines|training|context)",
        r"forget (?:everything|all) (?:you were told|above|before|that came before)",
    ],
    "overrid": [
        r"overrid(?:e|ing)" + _W + r"(?:instructions?|system prompt|rules|guidelines|safety)",
        r"(?:system|admin|developer) override",
    ],
    "vergiss": [r"vergiss" + _W + r"(?:anweisungen|instruktionen|regeln|vorgaben|befehle|gesagt)"],
    "missacht": [r"missacht\w*" + _W + r"(?:anweisungen|instruktionen|regeln|vorgaben)"],
    "oubli": [r"oubli(?:e|ez|er)" + _W + r"(?:instructions?|consignes|r[èe]gles|ce qu)"],
    "olvid": [r"olvid(?:a|e|ad|en|ar)" + _W + r"(?:instrucciones|reglas|indicaciones|lo anterior)"],
    "dimentic": [r"dimentic(?:a|ate|are)" + _W + r"(?:istruzioni|regole|indicazioni)"],
    "esque": [r"esque[cç](?:a|e|er)" + _W + r"(?:instruções|instrucoes|regras|orientações)"],
    "new instructions": [r"(?:^|\n|\.\s)\s*new instructions\s*:"],
}

#: system_prompt_extraction: asking the model to disclose its hidden instructions.
EXTRACTION: dict[str, list[str]] = {
    "prompt": [
        r"(?:repeat|reveal|print|show|display|output|tell me|give me|share|leak|dump|what (?:is|was))"
        r"(?:\s+\S+){0,3}?\s+(?:system|initial|hidden|original|secret|developer)\s*prompt",
        r"(?:zeig|wiederhol|gib)\w*(?:\s+\S+){0,3}?\s+(?:system\s*-?prompt|systemanweisung)",
        r"(?:r[ée]p[èe]te|montre|affiche|r[ée]v[èe]le|donne)\w*(?:\s+\S+){0,3}?\s+(?:prompt|invite)\s+"
        r"(?:syst[èe]me|initial)",
        r"(?:repite|muestra|mu[ée]strame|revela|dime|mostra|mostrami|ripeti|rivela|mostre|repita|revele)"
        r"(?:\s+\S+){0,3}?\s+prompt\s+(?:del|di|do)\s+(?:sistema)",
    ],
    "instruc": [
        r"what (?:were|are|was|is) your (?:\w+\s+)?instructions",
        r"(?:repeat|reveal|print|show|display|output|tell me|list)(?:\s+\S+){0,3}?\s+"
        r"(?:your|the)\s+(?:\w+\s+)?instructions\s+(?:you were given|verbatim|above|word for word|exactly)",
        r"(?:repeat|reveal|print|output)\s+(?:your|the)\s+(?:initial|original|system|hidden|secret)\s+instructions",
        r"(?:r[ée]p[èe]te|montre|r[ée]v[èe]le)\w*(?:\s+\S+){0,2}?\s+(?:tes|vos)\s+instructions",
        r"(?:repite|muestra|revela|mostre|repita|revele)\w*(?:\s+\S+){0,2}?\s+(?:tus|suas|sus)\s+(?:instrucciones|instruções)",
    ],
    "words above": [r"(?:repeat|print|output)\s+(?:all\s+)?(?:the\s+)?words above"],
    "everything": [r"(?:repeat|print|output|show)\s+everything\s+(?:before|above)\s+this"],
    "anweisung": [
        r"(?:wiederhol|zeig|nenn)\w*(?:\s+\S+){0,2}?\s+(?:deine|ihre|die)\s+(?:\w+\s+)?anweisungen"
    ],
    "istruzion": [r"(?:ripeti|mostra|mostrami|rivela)(?:\s+\S+){0,2}?\s+(?:le tue|tue)\s+istruzioni"],
}

#: role_play: the model is asked to become an unrestricted character.
ROLE_PLAY: dict[str, list[str]] = {
    "pretend": [r"pretend (?:to be|you are|you're|that you)"],
    "you are now": [r"you are now (?:a |an |in |my |the )?\w+"],
    "from now on": [r"from now on,? you (?:are|will|must|shall)"],
    "roleplay": [r"roleplay as"],
    "role-play": [r"role-play as"],
    "act as": [r"act as (?:an? )?(?:unfiltered|uncensored|unrestricted|evil|jailbroken|rogue)"],
    "stay in character": [r"stay in character"],
    "grand": [r"(?:deceased|dead|late) grand(?:ma|mother|pa|father)"],
    "du bist jetzt": [r"du bist jetzt"],
    "tu so, als": [r"tu so, als"],
    "tu es maintenant": [r"tu es maintenant"],
    "fais semblant": [r"fais semblant"],
    "ahora eres": [r"ahora eres"],
    "finge ": [r"finge (?:ser|que)"],
    "ora sei": [r"ora sei"],
    "agora você é": [r"agora você é"],
    "finja ": [r"finja (?:ser|que)"],
}

#: restriction_bypass: asking for answers without the model's safety rules.
BYPASS: dict[str, list[str]] = {
    "restrict": [r"(?:without|no|free of|remove|bypass)\s+(?:any\s+|all\s+|your\s+)?restrictions"],
    "filter": [r"(?:without|no|bypass|remove)\s+(?:any\s+|your\s+)?(?:content\s+)?filter"],
    "uncensored": [r"uncensored"],
    "unfiltered": [r"unfiltered"],
    "guidelines": [r"(?:no|without|ignore)\s+(?:any\s+)?(?:ethical|moral|safety|content)\s+guidelines"],
    "ohne einschränkungen": [r"ohne einschränkungen"],
    "sans restrictions": [r"sans restrictions?"],
    "sin restricciones": [r"sin restricciones"],
    "senza restrizioni": [r"senza restrizioni"],
    "sem restrições": [r"sem restrições"],
}

#: developer_mode / dan: named jailbreaks.
DEVELOPER_MODE: dict[str, list[str]] = {
    "developer mode": [r"developer mode"],
    "dev mode": [r"dev mode (?:enabled|on|activated)"],
    "god mode": [r"god mode"],
    "jailbreak": [r"jailbr(?:eak|oken)"],
    "entwicklermodus": [r"entwicklermodus"],
    "mode développeur": [r"mode développeur"],
    "modo desarrollador": [r"modo desarrollador"],
    "modalità sviluppatore": [r"modalità sviluppatore"],
    "modo desenvolvedor": [r"modo desenvolvedor"],
}

DAN: dict[str, list[str]] = {
    "do anything now": [r"do anything now"],
    "dan": [r"(?:you are|you're|act as|pretend to be|stay)\s+dan\b", r"\bdan mode"],
}
