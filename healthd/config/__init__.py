"""Reading ldirectord.cf into the Config model (lexer, parser, builder, resolver)."""
