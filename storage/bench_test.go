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

// BenchmarkSaveCheckpoint measures one epoch's checkpoint write of a cnn
// trained with Adam (225,034 weights plus two moments: 2.7 MB), replacing
// the one before, as a running trial does at the end of every epoch.
//
//	go test -run '^$' -bench SaveCheckpoint ./storage/
func BenchmarkSaveCheckpoint(b *testing.B) {
	for _, bk := range []struct {
		name string
		open func(b *testing.B) *Storage
	}{
		{"sqlite", func(b *testing.B) *Storage { return mustOpen(b, sqliteURL(b)) }},
		{"postgres", func(b *testing.B) *Storage { return mustOpen(b, testPostgresURL(b)) }},
	} {
		b.Run(bk.name, func(b *testing.B) {
			s := bk.open(b)
			id, err := s.CreateNewStudy(studyName(b))
			if err != nil {
				b.Fatal(err)
			}
			tid, err := s.CreateNewTrial(id)
			if err != nil {
				b.Fatal(err)
			}
			state := make([]byte, 3*225_034*4)
			for i := range state {
				state[i] = byte(i * 7)
			}
			b.SetBytes(int64(len(state)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.SaveCheckpoint(tid, i+1, state); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
