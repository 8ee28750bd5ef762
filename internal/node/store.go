package node

import "github.com/jmoiron/sqlx"

// Store reads and writes the node monitoring tables.
type Store struct {
	// DB is the Vigil database.
	DB *sqlx.DB
}
