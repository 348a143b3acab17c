"""The model stage of cqia (score, generate): one click-free core over any OpenAI-compatible
chat-completions endpoint (vLLM, Ollama, DeepSeek, DashScope, OpenAI, ...).

- client.py     the HTTP client (httpx, imported only when a command runs) and its errors
- limiter.py    requests in flight, --rpm/--tpm, adaptive slow-down on 429
- cache.py      answers keyed by model + messages + sampling parameters: SQLite (WAL) or Redis
- prompts.py    rubric / prompt templates (TOML), {field} rendering with dotted paths
- parse.py      scores out of a judge's answer
- runner.py     one record -> its requests -> answers: cache, limiter, retries, accounting
- accounting.py counters, progress line, summary, cost
- agreement.py  the judge against human labels (--truth)
"""
