"""The `.nn` text model format: a lark grammar (`nn.lark`), its parser (`syntax`) and the
lowering to the `nn` dialect (`lower`). See docs/nn-format.md."""
