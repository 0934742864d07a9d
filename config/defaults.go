package config

import "time"

// Default returns the configuration of an empty file: every SPEC §2 default
// and no services.
func Default() *Config {
	return &Config{
		ShutdownTimeout: 30 * time.Second,
		Admin:           Admin{Listen: "127.0.0.1:9090"},
		Log:             Log{Level: "info", Format: "console", AccessLog: true},
		Fleet:           defaultFleet(),
	}
}

func defaultHealthCheck() HealthCheck {
	return HealthCheck{
		Enabled:            true,
		Type:               "tcp",
		Interval:           10 * time.Second,
		Timeout:            3 * time.Second,
		HealthyThreshold:   2,
		UnhealthyThreshold: 3,
		Path:               "/health",
		ExpectedStatus:     []int{200, 204},
		Passive: PassiveChecks{
			Enabled:             true,
			ErrorRateThreshold:  0.5,
			MinRequests:         10,
			ConsecutiveFailures: 5,
			Window:              time.Minute,
		},
	}
}

func defaultResilience() Resilience {
	return Resilience{
		CircuitBreaker: CircuitBreaker{
			Enabled:               true,
			MaxFailures:           5,
			Timeout:               60 * time.Second,
			MaxConcurrentRequests: 1,
		},
		Retry: Retry{
			Enabled:             true,
			MaxAttempts:         3,
			InitialDelay:        100 * time.Millisecond,
			MaxDelay:            10 * time.Second,
			Multiplier:          2,
			Jitter:              0.1,
			BudgetRatio:         0.2,
			MinRetriesPerSecond: 10,
		},
	}
}

// defaultService has every service default; name, listen and the inherited
// health_check and resilience tables are filled in by the reader.
func defaultService() Service {
	return Service{
		Algorithm:     RoundRobin,
		ProxyProtocol: "none",
		Timeouts: Timeouts{
			Connect: 5 * time.Second,
			Idle:    time.Hour,
		},
	}
}

func defaultBackend() Backend {
	return Backend{Weight: 1}
}

func defaultFleet() Fleet {
	return Fleet{
		Name:            "default",
		DialTimeout:     2 * time.Second,
		RequestTimeout:  2 * time.Second,
		PublishInterval: 2 * time.Second,
	}
}
