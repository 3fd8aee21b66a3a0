// Command xdbc asks a Flight SQL server for its type catalogue (GetXdbcTypeInfo) with the
// arrow-go Flight SQL client and prints each type's name and XDBC data type, one per line.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := flightsql.NewClient(os.Args[1], nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer client.Close()
	info, err := client.GetXdbcTypeInfo(ctx, nil)
	if err != nil {
		fail(err)
	}
	reader, err := client.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		fail(err)
	}
	defer reader.Release()
	for reader.Next() {
		record := reader.Record()
		names := record.Column(0).(*array.String)
		types := record.Column(1).(*array.Int32)
		for i := 0; i < int(record.NumRows()); i++ {
			fmt.Printf("%s\t%d\n", names.Value(i), types.Value(i))
		}
	}
	if err := reader.Err(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
