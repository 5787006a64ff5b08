package storage

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
)

// BenchmarkStorageSQLite measures storage operations per second on a SQLite file: each
// iteration is one trial's life in five operations (create trial, set param, report an
// intermediate value, set the value, complete), run by 1 and by 8 goroutines.
//
//	go test -run '^$' -bench BenchmarkStorage ./storage/
func BenchmarkStorageSQLite(b *testing.B) {
	benchStorage(b, func(b *testing.B) *Storage { return mustOpen(b, sqliteURL(b)) })
}

// BenchmarkStoragePostgres is the same against $FMTUNE_TEST_POSTGRES.
func BenchmarkStoragePostgres(b *testing.B) {
	benchStorage(b, func(b *testing.B) *Storage { return mustOpen(b, testPostgresURL(b)) })
}

const opsPerTrial = 5

func benchStorage(b *testing.B, open func(b *testing.B) *Storage) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", workers), func(b *testing.B) {
			s := open(b)
			id, err := s.CreateNewStudy(studyName(b))
			if err != nil {
				b.Fatal(err)
			}
			dist := goptuna.LogUniformDistribution{Low: 1e-5, High: 1e-1}
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := trialCycle(s, id, dist); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(opsPerTrial*b.N)/elapsed.Seconds(), "ops/s")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "trials/s")
		})
	}
}

func trialCycle(s *Storage, studyID int, dist goptuna.LogUniformDistribution) error {
	tid, err := s.CreateNewTrial(studyID)
	if err != nil {
		return err
	}
	if err := s.SetTrialParam(tid, "lr", 1e-3, dist); err != nil {
		return err
	}
	if err := s.SetTrialIntermediateValue(tid, 0, 0.5); err != nil {
		return err
	}
	if err := s.SetTrialValue(tid, 0.25); err != nil {
		return err
	}
	return s.SetTrialState(tid, goptuna.TrialStateComplete)
}
