"""Deterministic synthetic ticket export (English + Russian) with learnable topic/priority cues.

Each ticket = greeting + a topic phrase (sometimes a misleading one from another topic) +
optional filler + an urgency cue (sometimes absent or pointing one level off) + sign-off, with
typos and label noise, so a TF-IDF baseline lands clearly above chance but below perfect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOPIC_WEIGHTS = {
    "technical support": 0.24,
    "billing": 0.18,
    "account access": 0.17,
    "network": 0.14,
    "hardware": 0.12,
    "feature request": 0.09,
    "security": 0.06,
}
PRIORITIES = ("low", "medium", "high")
# P(priority | topic): security/network skew high, feature requests skew low.
PRIORITY_BY_TOPIC = {
    "technical support": (0.30, 0.45, 0.25),
    "billing": (0.30, 0.50, 0.20),
    "account access": (0.20, 0.45, 0.35),
    "network": (0.15, 0.40, 0.45),
    "hardware": (0.30, 0.45, 0.25),
    "feature request": (0.65, 0.30, 0.05),
    "security": (0.10, 0.30, 0.60),
}

SLOTS = {
    "en": {
        "app": [
            "the CRM",
            "the mobile app",
            "the web portal",
            "Outlook",
            "the reporting tool",
            "Jira",
            "the HR system",
        ],
        "device": [
            "laptop",
            "printer",
            "monitor",
            "docking station",
            "phone",
            "keyboard",
            "headset",
        ],
        "code": ["0x80070005", "E-1042", "500", "403", "ERR_TIMEOUT", "1603"],
        "amount": ["$49", "$120", "$15.99", "$300", "$2,400"],
    },
    "ru": {
        "app": [
            "CRM",
            "мобильное приложение",
            "веб-портал",
            "Outlook",
            "систему отчётов",
            "Jira",
            "кадровую систему",
        ],
        "device": [
            "ноутбук",
            "принтер",
            "монитор",
            "док-станцию",
            "телефон",
            "клавиатуру",
            "гарнитуру",
        ],
        "code": ["0x80070005", "E-1042", "500", "403", "ERR_TIMEOUT", "1603"],
        "amount": ["4900 руб.", "12000 руб.", "1599 руб.", "300 евро", "2400 руб."],
    },
}

TOPIC_PHRASES = {
    "en": {
        "technical support": [
            "{app} crashes every time I open it",
            "{app} shows error {code} after the update",
            "I cannot install {app}, the installer fails with code {code}",
            "{app} is extremely slow and freezes",
            "the latest update broke {app}",
            "{app} does not save my changes",
            "reports in {app} come out empty",
        ],
        "billing": [
            "I was charged {amount} twice this month",
            "my invoice shows the wrong amount of {amount}",
            "please refund the payment of {amount}",
            "the subscription renewed without my consent",
            "I need a copy of the invoice for last month",
            "my card was declined but the money was taken",
            "why did the price go up to {amount}",
        ],
        "account access": [
            "I cannot log in to {app}, my password is not accepted",
            "my account is locked after several attempts",
            "the password reset link does not arrive",
            "two-factor codes are rejected when I sign in",
            "I lost access to my account after changing my e-mail",
            "please unlock the account of a new colleague",
            "single sign-on redirects me back to the login page",
        ],
        "network": [
            "I cannot connect to the VPN from my {device}",
            "the Wi-Fi in the office keeps dropping",
            "internet is very slow on the third floor",
            "the shared drive is unreachable over the network",
            "DNS does not resolve internal sites",
            "the VPN disconnects every few minutes",
            "no network connection after plugging in the cable",
        ],
        "hardware": [
            "my {device} does not turn on",
            "the {device} is making a strange noise",
            "the screen of my {device} flickers",
            "the {device} battery drains within an hour",
            "the {device} was damaged and needs replacing",
            "the {device} is not recognised over USB",
            "paper keeps jamming in the printer",
        ],
        "feature request": [
            "it would be great if {app} could export to Excel",
            "please add a dark mode to {app}",
            "could you add bulk editing to {app}",
            "we would like an API for {app}",
            "suggestion: allow filtering reports by region",
            "please support Russian in {app}",
            "can we get calendar integration in {app}",
        ],
        "security": [
            "I received a suspicious phishing e-mail asking for my password",
            "someone logged into my account from an unknown country",
            "antivirus flagged malware on my {device}",
            "I think my credentials were leaked",
            "a stranger asked for access codes by phone",
            "ransomware warning appeared on my {device}",
            "unusual login alerts keep coming for {app}",
        ],
    },
    "ru": {
        "technical support": [
            "{app} вылетает при каждом запуске",
            "{app} выдаёт ошибку {code} после обновления",
            "не могу установить {app}, установщик падает с кодом {code}",
            "{app} очень медленно работает и зависает",
            "последнее обновление сломало {app}",
            "{app} не сохраняет изменения",
            "отчёты в {app} выгружаются пустыми",
        ],
        "billing": [
            "с меня дважды списали {amount} в этом месяце",
            "в счёте неверная сумма {amount}",
            "прошу вернуть платёж {amount}",
            "подписка продлилась без моего согласия",
            "нужна копия счёта за прошлый месяц",
            "карту отклонили, но деньги списались",
            "почему цена выросла до {amount}",
        ],
        "account access": [
            "не могу войти в {app}, пароль не принимается",
            "учётная запись заблокирована после нескольких попыток",
            "не приходит ссылка для сброса пароля",
            "коды двухфакторной аутентификации отклоняются",
            "потерял доступ к аккаунту после смены почты",
            "разблокируйте учётную запись нового коллеги",
            "единый вход возвращает меня на страницу входа",
        ],
        "network": [
            "не могу подключиться к VPN с {device}",
            "в офисе постоянно пропадает Wi-Fi",
            "очень медленный интернет на третьем этаже",
            "сетевой диск недоступен",
            "DNS не разрешает внутренние сайты",
            "VPN отключается каждые несколько минут",
            "нет подключения к сети после подключения кабеля",
        ],
        "hardware": [
            "мой {device} не включается",
            "{device} издаёт странный шум",
            "мерцает экран, {device} не работает нормально",
            "батарея разряжается за час, {device} не держит заряд",
            "{device} повреждён и требует замены",
            "{device} не определяется по USB",
            "в принтере постоянно застревает бумага",
        ],
        "feature request": [
            "было бы здорово, если бы {app} умела экспортировать в Excel",
            "добавьте тёмную тему в {app}",
            "можно ли добавить массовое редактирование в {app}",
            "нам нужен API для {app}",
            "предложение: фильтр отчётов по регионам",
            "поддержите английский язык в {app}",
            "хотим интеграцию с календарём в {app}",
        ],
        "security": [
            "пришло подозрительное фишинговое письмо с просьбой ввести пароль",
            "кто-то вошёл в мой аккаунт из другой страны",
            "антивирус нашёл вредоносное ПО на {device}",
            "похоже, мои учётные данные утекли",
            "незнакомец по телефону просил коды доступа",
            "на {device} появилось сообщение вымогателя",
            "постоянно приходят оповещения о странных входах в {app}",
        ],
    },
}

URGENCY = {
    "en": {
        "high": [
            "This is urgent, the whole team is blocked.",
            "Production is down, please help ASAP!",
            "Critical: we are losing customers right now.",
            "Please treat this as top priority, nobody can work.",
            "URGENT - deadline is in one hour.",
        ],
        "medium": [
            "It affects a few colleagues, please look at it today.",
            "It is annoying but we have a workaround.",
            "Would appreciate a fix this week.",
            "Some of our work is slowed down by this.",
        ],
        "low": [
            "No rush, whenever you have time.",
            "Just a question, nothing is blocked.",
            "Low priority, it can wait until next month.",
            "Not urgent at all, just letting you know.",
        ],
    },
    "ru": {
        "high": [
            "Срочно, вся команда стоит.",
            "Продакшн лежит, помогите как можно скорее!",
            "Критично: мы прямо сейчас теряем клиентов.",
            "Это высший приоритет, никто не может работать.",
            "СРОЧНО - дедлайн через час.",
        ],
        "medium": [
            "Затрагивает нескольких коллег, посмотрите сегодня, пожалуйста.",
            "Неприятно, но есть обходной путь.",
            "Хотелось бы исправить на этой неделе.",
            "Из-за этого часть работы замедлилась.",
        ],
        "low": [
            "Не срочно, когда будет время.",
            "Просто вопрос, ничего не блокирует.",
            "Низкий приоритет, может подождать до следующего месяца.",
            "Совсем не срочно, просто сообщаю.",
        ],
    },
}

GREETINGS = {
    "en": ["Hello,", "Hi team,", "Dear support,", "Good morning,", ""],
    "ru": ["Здравствуйте,", "Добрый день,", "Привет,", "Уважаемая поддержка,", ""],
}
FILLERS = {
    "en": [
        "I already restarted everything.",
        "This started yesterday.",
        "My colleague has the same issue.",
        "Details are below.",
        "I tried the steps from the wiki.",
        "",
    ],
    "ru": [
        "Я уже всё перезагрузил.",
        "Началось вчера.",
        "У коллеги то же самое.",
        "Подробности ниже.",
        "Пробовал шаги из инструкции.",
        "",
    ],
}
SIGNOFFS = {
    "en": ["Thanks.", "Best regards, {name}", "Thank you!", "", "Contact me at {email}."],
    "ru": ["Спасибо.", "С уважением, {name}", "Заранее спасибо!", "", "Мой адрес: {email}."],
}
NAMES = {
    "en": ["John", "Maria", "Alex", "Priya", "Tom"],
    "ru": ["Иван", "Мария", "Алексей", "Ольга", "Дмитрий"],
}


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(3)
    if kind == 0:
        return word[:i] + word[i + 1 :]  # drop
    if kind == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swap
    return word[:i] + word[i] + word[i:]  # double


def _fill(template: str, lang: str, rng: np.random.Generator) -> str:
    values = {k: v[int(rng.integers(len(v)))] for k, v in SLOTS[lang].items()}
    return template.format(**values)


def _pick(options: list[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


CUE_SHARE, OFF_CUE_SHARE = 0.72, 0.12  # urgency sentence of the true level; one level off


def make_ticket(topic: str, priority: str, lang: str, rng: np.random.Generator) -> str:
    return _make_ticket(topic, priority, lang, rng)[0]


def _make_ticket(
    topic: str, priority: str, lang: str, rng: np.random.Generator
) -> tuple[str, str | None]:
    """The ticket text and the urgency cue's level written into it (None: no cue)."""
    topics = list(TOPIC_PHRASES[lang])
    phrase = _fill(_pick(TOPIC_PHRASES[lang][topic], rng), lang, rng)
    parts = [_pick(GREETINGS[lang], rng), phrase[0].upper() + phrase[1:] + "."]
    if rng.random() < 0.25:  # a second, misleading problem mentioned in passing
        other = topics[int(rng.integers(len(topics)))]
        parts.append(
            _fill(_pick(TOPIC_PHRASES[lang][other], rng), lang, rng).capitalize() + " as well."
            if lang == "en"
            else "Также " + _fill(_pick(TOPIC_PHRASES[lang][other], rng), lang, rng) + "."
        )
    parts.append(_pick(FILLERS[lang], rng))
    draw, cue = rng.random(), None
    if draw < CUE_SHARE:
        cue = priority
    elif draw < CUE_SHARE + OFF_CUE_SHARE:  # a cue one level off
        idx = PRIORITIES.index(priority)
        cue = PRIORITIES[min(2, idx + 1)] if rng.random() < 0.5 else PRIORITIES[max(0, idx - 1)]
    if cue is not None:
        parts.append(_pick(URGENCY[lang][cue], rng))
    name = _pick(NAMES[lang], rng)
    parts.append(_pick(SIGNOFFS[lang], rng).format(name=name, email=f"{name.lower()}@example.com"))
    words = " ".join(p for p in parts if p).split()
    words = [_typo(w, rng) if rng.random() < 0.03 else w for w in words]
    return " ".join(words), cue


def generate(
    n_samples: int,
    seed: int,
    ru_share: float = 0.3,
    label_noise: float = 0.05,
    latents: bool = False,
) -> pd.DataFrame:
    """Return a DataFrame with columns text, topic, priority, language; same seed → same rows.

    latents=True adds what the text was written from: `written_topic` (the label before label
    noise) and `cue` (the urgency sentence's level, "" when the ticket has none).
    """
    if n_samples < 1:
        raise ValueError("n_samples must be positive")
    rng = np.random.default_rng(seed)
    topics = list(TOPIC_WEIGHTS)
    weights = np.array(list(TOPIC_WEIGHTS.values()))
    rows = []
    for _ in range(n_samples):
        topic = topics[int(rng.choice(len(topics), p=weights / weights.sum()))]
        priority = PRIORITIES[int(rng.choice(3, p=PRIORITY_BY_TOPIC[topic]))]
        lang = "ru" if rng.random() < ru_share else "en"
        text, cue = _make_ticket(topic, priority, lang, rng)
        latent = {"written_topic": topic, "cue": cue or ""}
        if rng.random() < label_noise:
            topic = topics[int(rng.integers(len(topics)))]
        if rng.random() < label_noise:
            priority = PRIORITIES[int(rng.integers(3))]
        row = {"text": text, "topic": topic, "priority": priority, "language": lang}
        rows.append({**row, **latent} if latents else row)
    return pd.DataFrame(rows)


def bayes_proba(latents: pd.DataFrame, label_noise: float = 0.05) -> dict[str, np.ndarray]:
    """P(label | what the text was written from), from the generator's own probabilities.

    Columns of `latents`: written_topic, cue (see generate). Rows of the result follow
    TOPIC_WEIGHTS' and PRIORITIES' order. No classifier that reads only the text can do better in
    expectation: its argmax is the ceiling for accuracy on this data.
    """
    topics = list(TOPIC_WEIGHTS)
    written = latents["written_topic"].map(topics.index).to_numpy()
    topic = np.full((len(latents), len(topics)), label_noise / len(topics))
    topic[np.arange(len(latents)), written] += 1 - label_noise

    def cue_likelihood(cue: str, level: int) -> float:
        if not cue:
            return 1 - CUE_SHARE - OFF_CUE_SHARE
        gap = abs(PRIORITIES.index(cue) - level)
        edge = OFF_CUE_SHARE / 2 if level in (0, len(PRIORITIES) - 1) else 0.0
        return CUE_SHARE + edge if gap == 0 else OFF_CUE_SHARE / 2 if gap == 1 else 0.0

    priority = np.array(
        [
            [PRIORITY_BY_TOPIC[t][k] * cue_likelihood(c, k) for k in range(len(PRIORITIES))]
            for t, c in zip(latents["written_topic"], latents["cue"], strict=True)
        ]
    )
    priority /= priority.sum(axis=1, keepdims=True)
    priority = (1 - label_noise) * priority + label_noise / len(PRIORITIES)
    return {"topic": topic, "priority": priority}


def written_from(cfg) -> pd.DataFrame:
    """The synthetic data of `cfg` with its latents (see generate), indexed by the text as
    preprocessing cleans it (first of duplicates, as preprocessing keeps)."""
    from ticketml.data.preprocess import clean_text

    syn = cfg.data.synthetic
    raw = generate(
        int(syn.n_samples), int(cfg.seed), float(syn.ru_share), float(syn.label_noise), latents=True
    )
    raw["text"] = raw["text"].map(lambda t: clean_text(t, cfg.preprocess.mask_pii))
    return raw.drop_duplicates("text").set_index("text")


def ceiling_proba(cfg, texts: list[str], label_maps: dict) -> dict[str, np.ndarray] | None:
    """The Bayes posterior (`bayes_proba`) for processed texts of the synthetic data of `cfg`,
    columns in label-map order; None when a text is not one this generator wrote with this config
    (another export, or other synthetic settings)."""
    raw = written_from(cfg)
    rows = raw.index.get_indexer(texts)
    if len(rows) == 0 or (rows < 0).any():
        return None
    order = {"topic": list(TOPIC_WEIGHTS), "priority": list(PRIORITIES)}
    if any(set(label_maps[t]) != set(order[t]) for t in order):
        return None
    posterior = bayes_proba(raw.iloc[rows], float(cfg.data.synthetic.label_noise))
    return {
        t: p[:, [order[t].index(label) for label in label_maps[t]]] for t, p in posterior.items()
    }
