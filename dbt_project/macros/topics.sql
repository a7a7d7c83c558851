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

{# Whether the keyword row ``keyword`` (of int_topic__keywords) occurs in ``text``, already
   normalised: as cxkpi.topics.Keyword.matches decides. Literal text, never a pattern. #}
{% macro keyword_occurs(keyword, text) -%}
case {{ keyword }}.match_mode
    when 'anywhere' then strpos({{ text }}, {{ keyword }}.normalized) > 0
    when 'prefix' then strpos(' ' || {{ text }}, ' ' || {{ keyword }}.normalized) > 0
    else strpos(' ' || {{ text }} || ' ', ' ' || {{ keyword }}.normalized || ' ') > 0
end
{%- endmacro %}
