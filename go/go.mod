module github.com/rocksmq/rocksmq/go

go 1.23
