module kes-cpp/bench/goclient

go 1.19
