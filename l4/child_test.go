package l4

func maybeRunChild() {}
