{# Text as topic matching sees it (cxkpi.topics.normalize, the same steps): full-width
   forms folded to ASCII, lower case, final sigma as sigma, combining marks stripped, every run of characters that are
   neither letters nor digits made one space, trimmed. tests/test_topics.py checks that
   both give the same text on a corpus in several scripts. #}
{% macro cxkpi_normalize_text(text) %}
{{ return(adapter.dispatch('cxkpi_normalize_text', 'cxkpi')(text)) }}
{% endmacro %}

{% macro duckdb__cxkpi_normalize_text(text) %}
{%- set full_width = "！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～　" -%}
{%- set half_width = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~ " -%}
trim(regexp_replace(
    strip_accents(translate(
        lower(translate({{ text }}, '{{ full_width }}', '{{ half_width | replace("'", "''") }}')),
        'ς', 'σ'
    )),
    '[^\p{L}\p{N}]+', ' ', 'g'
))
{%- endmacro %}

{# PostgreSQL: the same steps with its functions - NFD, then the combining-mark blocks
   dropped (no Unicode property classes in its regular expressions), NFC; letters and
   digits as the database's UTF-8 character classes know them. #}
{% macro postgres__cxkpi_normalize_text(text) %}
{%- set full_width = "！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～　" -%}
{%- set half_width = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~ " -%}
trim(regexp_replace(
    normalize(regexp_replace(
        normalize(translate(
            lower(translate({{ text }}, '{{ full_width }}', '{{ half_width | replace("'", "''") }}')),
            'ς', 'σ'
        ), nfd),
        '[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u0610-\u061a\u064b-\u065f\u0900-\u0903\u093a-\u094f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\u3099-\u309a\ufe20-\ufe2f]', '', 'g'
    ), nfc),
    '[^[:alpha:][:digit:]]+', ' ', 'g'
))
{%- endmacro %}

{# Whether the keyword row ``keyword`` (of int_topic__keywords) occurs in ``text``, already
   normalised: as cxkpi.topics.Keyword.matches decides. Literal text, never a pattern. #}
{% macro keyword_occurs(keyword, text) -%}
case {{ keyword }}.match_mode
    when 'anywhere' then strpos({{ text }}, {{ keyword }}.normalized) > 0
    when 'prefix' then strpos(' ' || {{ text }}, ' ' || {{ keyword }}.normalized) > 0
    else strpos(' ' || {{ text }} || ' ', ' ' || {{ keyword }}.normalized || ' ') > 0
end
{%- endmacro %}
