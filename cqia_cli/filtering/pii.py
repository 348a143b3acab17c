"""The contact-data detectors of the `pii` rule live in `cqia_cli.text.pii`, shared with
`cqia clean`'s `pii-mask` step; this module keeps the old import path working."""

from cqia_cli.text.pii import *  # noqa: F401,F403
from cqia_cli.text.pii import (  # noqa: F401 - private names some callers use
    _CARD_PREFIX, _DIGITS, _ID_CHECK, _ID_WEIGHTS, _MATH_AFTER, _MATH_BEFORE, _NUMBER_LIKE,
    _QQ_WORD, _TRIGGERS, _WECHAT_WORD, _digit_count, _find_card, _find_email, _find_id,
    _find_landline, _find_mobile, _find_qq, _find_url, _find_wechat,
)
