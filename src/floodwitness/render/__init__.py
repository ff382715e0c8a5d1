"""Last stage: renderers (terminal, JSON). They consume results; they never compute evidence."""
