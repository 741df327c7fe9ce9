package specs

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
