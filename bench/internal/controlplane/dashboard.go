package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// DashboardResult is how long the admin server takes to render the dashboard.
type DashboardResult struct {
	Backends  int
	Requests  int
	Median    time.Duration // GET / from request to the last byte of the body
	P90       time.Duration
	Max       time.Duration
	Bytes     int           // size of the page
	APIMedian time.Duration // GET /api/v1/services, for comparison
}

// DashboardRequests is how many timed requests each page gets.
const DashboardRequests = 20

// Dashboard runs balance-l4 with services × perSvc backends (checks every 10 s,
// so the page has results to show), then times DashboardRequests sequential
// GET / and GET /api/v1/services after one untimed warm-up request each.
func Dashboard(ctx context.Context, o Options, services, perSvc int) (DashboardResult, error) {
	r := DashboardResult{Backends: services * perSvc, Requests: DashboardRequests}
	o.log("control plane: starting balance-l4 with %d backends for the dashboard", r.Backends)
	inst, err := start(ctx, o, "dashboard-scale", services, perSvc, true, 10*time.Second)
	if err != nil {
		return r, err
	}
	defer inst.stop()

	page, err := timeGets(ctx, inst, "/", &r.Bytes)
	if err != nil {
		return r, err
	}
	var apiBytes int
	api, err := timeGets(ctx, inst, "/api/v1/services", &apiBytes)
	if err != nil {
		return r, err
	}
	r.Median, r.P90, r.Max = page[len(page)/2], page[len(page)*9/10], page[len(page)-1]
	r.APIMedian = api[len(api)/2]
	o.log("control plane: dashboard with %d backends: median %v, p90 %v, %d bytes", r.Backends, r.Median, r.P90, r.Bytes)
	return r, inst.stop()
}

// timeGets returns the sorted durations of DashboardRequests GETs of path.
func timeGets(ctx context.Context, inst *instance, path string, size *int) ([]time.Duration, error) {
	var ds []time.Duration
	for i := range DashboardRequests + 1 {
		start := time.Now()
		status, body, err := inst.get(ctx, path)
		took := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("timing GET %s: %w", path, err)
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("timing GET %s: status %d: %.200s", path, status, body)
		}
		if i > 0 { // the first request warms caches and connections
			ds = append(ds, took)
		}
		*size = len(body)
	}
	slices.Sort(ds)
	return ds, nil
}
