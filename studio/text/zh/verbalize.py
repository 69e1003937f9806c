"""The ordered number-verbalisation rules of the Mandarin normaliser.

Each rule is a function ``str -> str``; :data:`RULES` lists them in the order upstream applies
them. The order matters (and produces upstream's quirks): dates, times, ``~`` ranges with units,
temperatures, unit symbols, arithmetic, powers, fractions, percentages, phone numbers, numeric
ranges, negative numbers, version numbers, decimals, numbers with a measure word, long digit
strings (read digit by digit) and finally every remaining number.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from studio.text.zh.numbers import read_cardinal, read_digits, read_number

_NUM = r"(?:-?\d+(?:\.\d+)?|\.\d+)"  # a signed integer/decimal or a bare ".5"


def _sub(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    return lambda text: pattern.sub(replace, text)


def _say_number(token: str) -> str:
    """``-3.5`` → 负三点五; ``.5`` → 零点五."""
    if token.startswith("-"):
        return "负" + read_number(token[1:])
    return read_number(token)


# --- dates ------------------------------------------------------------------------------------
_DATE = re.compile(
    r"(?P<year>\d{4}|\d{2})年"
    r"(?:(?P<month>0?[1-9]|1[0-2])月)?"
    r"(?:(?P<day>0?[1-9]|[12][0-9]|30|31)(?P<day_mark>[日号]))?"
)
_ISO_DATE = re.compile(r"(?P<year>\d{4})(?P<sep>[- /.])(?P<month>0[1-9]|1[012])(?P=sep)(?P<day>0[1-9]|[12][0-9]|3[01])")


def _date(match: re.Match[str]) -> str:
    parts = [read_digits(match["year"]) + "年"]
    if match["month"]:
        parts.append(read_cardinal(match["month"]) + "月")
    if match["day"]:
        day_mark = match.groupdict().get("day_mark") or "日"
        parts.append(read_cardinal(match["day"]) + day_mark)
    return "".join(parts)


# --- clock times ------------------------------------------------------------------------------
_CLOCK = r"([0-1]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?"
_TIME_RANGE = re.compile(_CLOCK + r"[~-]" + _CLOCK)
_TIME = re.compile(_CLOCK)


def _leading_zero_number(digits: str) -> str:
    """Minutes/seconds: ``"05"`` → 零五, ``"15"`` → 十五."""
    text = read_number(digits.lstrip("0"))
    return "零" + text if digits.startswith("0") else text


def _clock(hour: str, minute: str, second: str | None, half_hour_minute: str) -> str:
    text = read_number(hour) + "点"
    if minute.lstrip("0"):
        # Upstream decides "半" on the *first* time's minutes, also for the end of a range.
        text += "半" if int(half_hour_minute) == 30 else _leading_zero_number(minute) + "分"
    if second and second.lstrip("0"):
        text += _leading_zero_number(second) + "秒"
    return text


def _time(match: re.Match[str]) -> str:
    return _clock(match[1], match[2], match[3], match[2])


def _time_range(match: re.Match[str]) -> str:
    return _clock(match[1], match[2], match[3], match[2]) + "至" + _clock(match[4], match[5], match[6], match[2])


# --- units, temperatures, "~" ranges -----------------------------------------------------------
_UNIT_WORDS = {  # replaced wherever they occur, in this order
    "cm2": "平方厘米",
    "cm²": "平方厘米",
    "cm3": "立方厘米",
    "cm³": "立方厘米",
    "cm": "厘米",
    "db": "分贝",
    "ds": "毫秒",
    "kg": "千克",
    "km": "千米",
    "m2": "平方米",
    "m²": "平方米",
    "m³": "立方米",
    "m3": "立方米",
    "ml": "毫升",
    "m": "米",
    "mm": "毫米",
    "s": "秒",
}
_RANGE_UNIT = r"(?:%|°C|℃|度|摄氏度|cm2|cm²|cm3|cm³|cm|db|ds|kg|km|m2|m²|m³|m3|ml|m|mm|s)"
_UNIT_RANGE = re.compile(_NUM + _RANGE_UNIT + "~" + _NUM + _RANGE_UNIT)
_TEMPERATURE = re.compile(r"(-?)(\d+(?:\.\d+)?)(°C|℃|度|摄氏度)")


def _temperature(match: re.Match[str]) -> str:
    below_zero = "零下" if match[1] else ""
    unit = "摄氏度" if match[3] == "摄氏度" else "度"
    return below_zero + read_number(match[2]) + unit


def _unit_words(text: str) -> str:
    for symbol, word in _UNIT_WORDS.items():
        text = text.replace(symbol, word)
    return text


# --- arithmetic and powers -------------------------------------------------------------------
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ"
_OPERAND = rf"(?:-?\d+(?:\.\d+)?[{_SUPERSCRIPTS}]*|\.\d+[{_SUPERSCRIPTS}]*|[A-Za-z][{_SUPERSCRIPTS}]*)"
_ARITHMETIC = re.compile(rf"({_OPERAND})([+\-×÷=])({_OPERAND})")
_OPERATOR_WORDS = {"+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等于"}
_POWER = re.compile(f"[{_SUPERSCRIPTS}]+")
_POWER_PLAIN = str.maketrans(_SUPERSCRIPTS, "0123456789xyn")


def _arithmetic(text: str) -> str:
    while _ARITHMETIC.search(text):
        text = _ARITHMETIC.sub(lambda m: m[1] + _OPERATOR_WORDS[m[2]] + m[3], text)
    return text


def _power(match: re.Match[str]) -> str:
    return "的" + match[0].translate(_POWER_PLAIN) + "次方"


# --- fractions, percentages ------------------------------------------------------------------
_FRACTION = re.compile(r"(-?)(\d+)/(\d+)")
_PERCENT = re.compile(r"(-?)(\d+(?:\.\d+)?)%")


def _fraction(match: re.Match[str]) -> str:
    return ("负" if match[1] else "") + read_number(match[3]) + "分之" + read_number(match[2])


def _percent(match: re.Match[str]) -> str:
    return ("负" if match[1] else "") + "百分之" + read_number(match[2])


# --- phone numbers (digit by digit, 一 said 幺) --------------------------------------------------
_MOBILE = re.compile(r"(?<!\d)(?:\+?86 ?)?1(?:[38]\d|5[0-35-9]|7[678]|9[89])\d{8}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(?:0(?:10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7}(?!\d)")
_SERVICE_NUMBER = re.compile(r"400-?\d{3}-?\d{4}")


def _mobile(match: re.Match[str]) -> str:
    return "，".join(read_digits(part, yao=True) for part in match[0].strip("+").split())


def _landline(match: re.Match[str]) -> str:
    return "，".join(read_digits(part, yao=True) for part in match[0].split("-"))


# --- plain numbers ---------------------------------------------------------------------------
_RANGE = re.compile(r"(?<![\d+\-×÷=])(-?\d+(?:\.\d+)?)[-~](-?\d+(?:\.\d+)?)(?![\d+\-×÷=])")
_NEGATIVE = re.compile(r"-(\d+)")
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?(?:\.\d+)+")
_DECIMAL = re.compile(r"-?\d+\.\d+|\.\d+")
_MEASURE_WORDS = (
    "(处|台|架|枚|趟|幅|平|方|堵|间|床|株|批|项|例|列|篇|栋|注|亩|封|艘|把|目|套|段|人|所|朵|匹|张|座|回|场|尾|条|个|首|"
    "阙|阵|网|炮|顶|丘|棵|只|支|袭|辆|挑|担|颗|壳|窠|曲|墙|群|腔|砣|座|客|贯|扎|捆|刀|令|打|手|罗|坡|山|岭|江|溪|钟|队|单|"
    "双|对|出|口|头|脚|板|跳|枝|件|贴|针|线|管|名|位|身|堂|课|本|页|家|户|层|丝|毫|厘|分|钱|两|斤|担|铢|石|钧|锱|忽|"
    "(千|毫|微)克|毫|厘|(公)分|分|寸|尺|丈|里|寻|常|铺|程|(千|分|厘|毫|微)米|米|撮|勺|合|升|斗|石|盘|碗|碟|叠|桶|笼|盆|"
    "盒|杯|钟|斛|锅|簋|篮|盘|桶|罐|瓶|壶|卮|盏|箩|箱|煲|啖|袋|钵|年|月|日|季|刻|时|周|天|秒|分|小时|旬|纪|岁|世|更|夜|春|"
    "夏|秋|冬|代|伏|辈|丸|泡|粒|颗|幢|堆|条|根|支|道|面|片|张|颗|块|元|(亿|千万|百万|万|千|百)|(亿|千万|百万|万|千|百|美|)元|"
    "(亿|千万|百万|万|千|百|十|)吨|(亿|千万|百万|万|千|百|)块|角|毛|分|(公(里|引|丈|尺|寸|分|釐)))"
)
_COUNTED = re.compile(r"(\d+)([多余几+])?" + _MEASURE_WORDS)
_DIGIT_STRING = re.compile(r"\d{3}\d*")
_ANY_NUMBER = re.compile(_NUM)


def _range(match: re.Match[str]) -> str:
    return _say_number(match[1]) + "到" + _say_number(match[2])


def _version(match: re.Match[str]) -> str:
    return "".join("点" if ch == "." else read_number(ch) for ch in match[0])


def _counted(match: re.Match[str]) -> str:
    number = read_number(match[1])
    approx = "多" if match[2] == "+" else (match[2] or "")
    return ("两" if number == "二" else number) + approx + match[3]


RULES: tuple[Callable[[str], str], ...] = (
    _sub(_DATE, _date),
    _sub(_ISO_DATE, _date),
    _sub(_TIME_RANGE, _time_range),
    _sub(_TIME, _time),
    _sub(_UNIT_RANGE, lambda m: m[0].replace("~", "至")),
    _sub(_TEMPERATURE, _temperature),
    _unit_words,
    _arithmetic,
    _sub(_POWER, _power),
    _sub(_FRACTION, _fraction),
    _sub(_PERCENT, _percent),
    _sub(_MOBILE, _mobile),
    _sub(_LANDLINE, _landline),
    _sub(_SERVICE_NUMBER, _landline),
    _sub(_RANGE, _range),
    _sub(_NEGATIVE, lambda m: "负" + read_number(m[1])),
    _sub(_VERSION, _version),
    _sub(_DECIMAL, lambda m: _say_number(m[0])),
    _sub(_COUNTED, _counted),
    _sub(_DIGIT_STRING, lambda m: read_digits(m[0], yao=True)),
    _sub(_ANY_NUMBER, lambda m: _say_number(m[0])),
)
