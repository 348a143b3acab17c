"""Text helpers shared by the commands that read text (filter, clean, and dedup in time):

    spans.py      where code blocks, inline code, LaTeX maths and links are (to read around or
                  leave alone), prose() and without_code()
    normalize.py  character classes and tables: Han, full-width forms, zero-width and control
                  characters, Unicode spaces
    pii.py        detectors of contact and personal data (e-mail, phone, QQ, WeChat, identity
                  and bank card numbers), first hit (filter) or every span (clean's masking)

Click-free, importable on their own, and cheap to import.
"""
