package vigil

import (
	"strconv"
	"strings"
)

// Level is the severity of an event or alert: an integer ≥ 0, higher is worse
// (watchTower's numeric level). The named levels are the documented numbers
// below; any other integer ≥ 0 is also valid.
type Level int

// The named levels.
const (
	LevelDebug    Level = 0
	LevelInfo     Level = 1
	LevelWarning  Level = 2
	LevelError    Level = 3
	LevelCritical Level = 4
)

var levelNames = map[string]Level{
	"debug": LevelDebug, "info": LevelInfo, "warning": LevelWarning, "warn": LevelWarning,
	"error": LevelError, "critical": LevelCritical,
}

// ParseLevel reads a level name (debug, info, warning, error, critical; any
// case) or a decimal integer ≥ 0. It returns a *FieldError for field "level"
// otherwise.
func ParseLevel(s string) (Level, error) {
	s = strings.TrimSpace(s)
	if l, ok := levelNames[strings.ToLower(s)]; ok {
		return l, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, Invalid("level", "must be an integer >= 0 or one of debug, info, warning, error, critical")
	}
	return Level(n), nil
}

// String returns the level's name, or its number when it has none.
func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarning:
		return "warning"
	case LevelError:
		return "error"
	case LevelCritical:
		return "critical"
	}
	return strconv.Itoa(int(l))
}

// UnmarshalJSON accepts a JSON integer ≥ 0 or a level name as a string.
func (l *Level) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := ParseLevel(s)
	if err != nil {
		return err
	}
	*l = v
	return nil
}
