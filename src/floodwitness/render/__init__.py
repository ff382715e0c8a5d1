"""Last stage: renderers (terminal, JSON, HTML, Markdown). They consume results; they never compute evidence."""
