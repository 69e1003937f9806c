"""Sentences to read aloud while recording, per language, chosen to touch most of each language's sounds.

Written for this project. English mixes all vowels, diphthongs and the rarer consonants (th, zh, ng, ch, j);
Chinese covers the initials, the finals and the four tones plus the neutral tone; Japanese covers the kana
rows, long vowels, geminates, the moraic n and palatalised syllables.
"""

from __future__ import annotations

READING_SCRIPTS: dict[str, tuple[str, ...]] = {
    "en": (
        "A bright yellow van pulled up, and six cheerful children jumped out onto the wet grass.",
        "She measured the azure fabric twice, then thought about the shape of the sleeves.",
        "Could you bring the heavy box of old books to the garage before lunch?",
        "We watched the huge orange moon rise quietly above the village rooftops.",
        "Thank you for joining us; the choir will sing a short song at noon.",
        "My voice sounds natural when I speak calmly, clearly, and at an even pace.",
    ),
    "zh": (
        "今天天气很好，我们一起去公园散步吧。",
        "请把桌子上的那本书递给我，谢谢你。",
        "小猫在窗台上晒太阳，看起来非常舒服。",
        "他说明天早上八点要坐火车去北京出差。",
        "春夏秋冬四个季节，各有各的美丽风景。",
        "我喜欢听音乐，也喜欢和朋友们聊天儿。",
    ),
    "ja": (
        "今日はとても良い天気ですね。",
        "駅の近くに新しいパン屋さんができました。",
        "すみません、この電車は東京へ行きますか。",
        "昨日は友達と一緒に映画を見に行きました。",
        "冷たいお茶と温かいコーヒー、どちらにしますか。",
        "ゆっくり、はっきり、自然な声で読んでください。",
    ),
}


def reading_script(language: str) -> tuple[str, ...]:
    """The sentences for ``language`` (``en``, ``zh``, ``ja``); English for any other code."""
    return READING_SCRIPTS.get(language, READING_SCRIPTS["en"])
