module github.com/balancel4/balance-l4

go 1.26
