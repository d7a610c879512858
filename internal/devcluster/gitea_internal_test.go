package devcluster

import "testing"

// The forge's admin token is read from the command's output; Gitea may log a
// line after it, and a log line taken for the token fails every API call
// with "token is required".
func TestAccessTokenIsTheHexLineNotALogLine(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef01234567"
	for name, out := range map[string]string{
		"alone":           token + "\n",
		"log line after":  token + "\n2026/12/02 17:07:41 ...s/setting/log.go:87:LoadSettings() [W] log.MODE is deprecated\n",
		"log line before": "2026/12/02 17:07:41 modules/setting/setting.go:191:loadRunModeFrom() [W] running as root\n" + token,
	} {
		got, err := accessToken(out)
		if err != nil || got != token {
			t.Errorf("%s: got %q, %v; want the token", name, got, err)
		}
	}
	if got, err := accessToken("2026/12/02 17:07:41 [E] failed\n"); err == nil {
		t.Errorf("output without a token gave %q and no error", got)
	}
}
