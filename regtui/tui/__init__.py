"""The Textual app: inspect archives, serve them with the embedded registry and watch pulls live.

Widgets only render; what they show comes from the `regtui.oci` model (`facts`), the registry's event stream
(`live`) and thread workers (`measure`, verification).
"""
