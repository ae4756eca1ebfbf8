"""Chat templates for models whose GGUF carries none.

Gemma 3's format: turns between ``<start_of_turn>ROLE`` and ``<end_of_turn>``, roles ``user``
and ``model``, no system role (a system message opens the first user turn instead).
"""

from __future__ import annotations

__all__ = ["GEMMA"]

GEMMA = (
    "{{ bos_token }}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set first_prefix = messages[0]['content'] ~ '\n\n' -%}"
    "{%- set turns = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_prefix = '' -%}"
    "{%- set turns = messages -%}"
    "{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}"
    "{{ '<start_of_turn>' ~ role ~ '\n' ~ (first_prefix if loop.first else '') ~ (message['content'] | trim)"
    " ~ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)
