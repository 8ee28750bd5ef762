package directorysim

import (
	"time"

	"github.com/vigil-health/vigil/internal/watch/directory"
)

// Service type ids and names of the demo catalogue.
const (
	TypeEmergencyDepartment     = "40"
	TypeUrgentTreatmentCentre   = "100"
	TypeGPHub                   = "28"
	TypeNameEmergencyDepartment = "Emergency Department"
	TypeNameUrgentTreatment     = "Urgent Treatment Centre"
	TypeNameGPHub               = "GP Access Hub"
)

// Roles and usernames of DefaultAccounts. PathwaysRole sees the whole
// catalogue except services restricted to DigitalRole; CapmonRole sees
// everything that is not restricted.
const (
	CapmonRole   = "CAPMON"
	PathwaysRole = "PATHWAYS_REFERRAL"
	DigitalRole  = "DIGITAL_REFERRAL"
)

// DefaultAccounts returns the accounts a simulator has when
// Options.Accounts is nil: username → account. The passwords are demo
// values, not secrets.
func DefaultAccounts() map[string]Account {
	return map[string]Account{
		"capmon":   {Password: "capmon-demo", Role: CapmonRole},
		"pathways": {Password: "pathways-demo", Role: PathwaysRole},
		"digital":  {Password: "digital-demo", Role: DigitalRole},
	}
}

// DemoLocations returns the search postcodes a simulator knows when
// Options.Locations is nil (city centres of Leeds, Manchester and London).
// Service postcodes are always known as well.
func DemoLocations() map[string]Location {
	return map[string]Location{
		"LS1 4AP":  {Easting: 429940, Northing: 433600},
		"LS2 7UE":  {Easting: 429600, Northing: 434800},
		"M1 1AE":   {Easting: 384640, Northing: 397990},
		"M13 9PL":  {Easting: 384700, Northing: 396200},
		"SW1A 2AA": {Easting: 530047, Northing: 179951},
		"EC1A 1BB": {Easting: 531900, Northing: 181500},
	}
}

// demoEpoch anchors the demo catalogue's "updated" times, so the catalogue
// is the same on every run.
var demoEpoch = time.Date(2024, time.March, 4, 7, 30, 0, 0, time.UTC)

// DemoServices returns the built-in catalogue: emergency departments,
// urgent treatment centres and GP hubs around Leeds, Manchester and London,
// mostly at HIGH capacity. A few GP hubs are visible to DigitalRole only.
func DemoServices() []Service {
	type row struct {
		id, name, typ, postcode string
		e, n                    int
		capacity, by            string
		digitalOnly             bool
	}
	const (
		ed, utc, gp = TypeEmergencyDepartment, TypeUrgentTreatmentCentre, TypeGPHub
		hi, lo, no  = directory.CapacityHigh, directory.CapacityLow, directory.CapacityNone
		yh, nw, ldn = "Yorkshire and the Humber", "North West", "London"
	)
	regions := map[byte]string{'2': yh, '3': nw, '4': ldn} // by id prefix
	rows := []row{
		// Leeds and West Yorkshire.
		{"2000001", "Leeds General Infirmary Emergency Department", ed, "LS1 3EX", 429400, 434400, hi, "j.smith", false},
		{"2000002", "St James's University Hospital Emergency Department", ed, "LS9 7TF", 432100, 435300, lo, "a.patel", false},
		{"2000003", "Pinderfields Hospital Emergency Department", ed, "WF1 4DG", 433400, 422400, hi, "m.jones", false},
		{"2000004", "Bradford Royal Infirmary Emergency Department", ed, "BD9 6RJ", 414400, 435900, hi, "k.ahmed", false},
		{"2000005", "Wharfedale Hospital Urgent Treatment Centre", utc, "LS21 2LY", 419700, 445600, hi, "s.brown", false},
		{"2000006", "St George's Centre Urgent Treatment Centre", utc, "LS10 4UZ", 430300, 427900, hi, "l.wilson", false},
		{"2000007", "Dewsbury Urgent Treatment Centre", utc, "WF13 4HS", 423300, 421700, no, "r.taylor", false},
		{"2000008", "Leeds Central GP Access Hub", gp, "LS2 8BE", 429800, 434200, hi, "d.evans", false},
		{"2000009", "Seacroft GP Access Hub", gp, "LS14 6UH", 436100, 435900, hi, "d.evans", false},
		{"2000010", "Armley GP Access Hub", gp, "LS12 3HD", 427000, 433200, hi, "d.evans", true},
		{"2000011", "Horsforth GP Access Hub", gp, "LS18 5SE", 423600, 438000, "", directory.RobotUser, false},
		{"2000012", "Morley GP Access Hub", gp, "LS27 9DZ", 425700, 428000, hi, "h.clarke", false},
		{"2000013", "Chapeltown GP Access Hub", gp, "LS7 3EX", 430800, 436300, lo, "h.clarke", false},
		// Greater Manchester.
		{"3000001", "Manchester Royal Infirmary Emergency Department", ed, "M13 9WL", 384600, 396000, hi, "p.walsh", false},
		{"3000002", "Salford Royal Hospital Emergency Department", ed, "M6 8HD", 378600, 399800, hi, "c.hughes", false},
		{"3000003", "North Manchester General Hospital Emergency Department", ed, "M8 5RB", 385300, 402100, lo, "n.khan", false},
		{"3000004", "Stepping Hill Hospital Emergency Department", ed, "SK2 7JE", 391300, 387600, hi, "e.wood", false},
		{"3000005", "Royal Oldham Hospital Emergency Department", ed, "OL1 2JH", 392000, 406100, hi, "g.hall", false},
		{"3000006", "Manchester Urgent Treatment Centre", utc, "M4 6DE", 385500, 398700, hi, "b.green", false},
		{"3000007", "Trafford General Urgent Treatment Centre", utc, "M41 5SL", 376100, 394000, hi, "b.green", false},
		{"3000008", "Bolton Urgent Treatment Centre", utc, "BL4 0JR", 372300, 406500, no, "t.lee", false},
		{"3000009", "Manchester City Centre GP Access Hub", gp, "M1 3BN", 384500, 397600, hi, "f.martin", false},
		{"3000010", "Hulme GP Access Hub", gp, "M15 5FQ", 383500, 396500, hi, "f.martin", false},
		{"3000011", "Cheetham Hill GP Access Hub", gp, "M8 8DH", 384400, 400900, hi, "f.martin", true},
		{"3000012", "Salford Central GP Access Hub", gp, "M3 6DB", 382700, 398900, hi, "i.roberts", false},
		{"3000013", "Levenshulme GP Access Hub", gp, "M19 3BX", 387600, 394300, hi, "i.roberts", false},
		// London.
		{"4000001", "St Thomas' Hospital Emergency Department", ed, "SE1 7EH", 530700, 179400, hi, "o.white", false},
		{"4000002", "University College Hospital Emergency Department", ed, "NW1 2BU", 529400, 182300, lo, "q.scott", false},
		{"4000003", "St Mary's Hospital Emergency Department", ed, "W2 1NY", 526800, 181400, hi, "u.young", false},
		{"4000004", "The Royal London Hospital Emergency Department", ed, "E1 1FR", 534600, 181700, hi, "v.king", false},
		{"4000005", "Chelsea and Westminster Hospital Emergency Department", ed, "SW10 9NH", 526200, 177900, hi, "w.wright", false},
		{"4000006", "Guy's Urgent Treatment Centre", utc, "SE1 9RT", 532800, 180000, hi, "x.lopez", false},
		{"4000007", "St Bartholomew's Urgent Treatment Centre", utc, "EC1A 7BE", 531900, 181600, hi, "x.lopez", false},
		{"4000008", "Whittington Urgent Treatment Centre", utc, "N19 5NF", 529300, 186900, no, "y.hill", false},
		{"4000009", "Soho GP Access Hub", gp, "W1F 8DW", 529500, 181000, hi, "z.adams", false},
		{"4000010", "Westminster GP Access Hub", gp, "SW1P 2PF", 529600, 178900, hi, "z.adams", false},
		{"4000011", "Bloomsbury GP Access Hub", gp, "WC1N 3BG", 530400, 182200, hi, "z.adams", true},
		{"4000012", "Islington GP Access Hub", gp, "N1 1TH", 531400, 183800, hi, "a.baker", false},
		{"4000013", "Southwark GP Access Hub", gp, "SE1 6LP", 531600, 179100, "", directory.RobotUser, false},
	}
	typeNames := map[string]string{ed: TypeNameEmergencyDepartment, utc: TypeNameUrgentTreatment, gp: TypeNameGPHub}
	out := make([]Service, len(rows))
	for i, r := range rows {
		region := regions[r.id[0]]
		s := Service{
			ID: r.id, Name: r.name, TypeID: r.typ, TypeName: typeNames[r.typ],
			Postcode: r.postcode, Easting: r.e, Northing: r.n, Region: region,
			Capacity: r.capacity, UpdatedBy: r.by,
			UpdatedAt: demoEpoch.Add(-time.Duration(i*37) * time.Minute),
		}
		if r.digitalOnly {
			s.Roles = []string{DigitalRole}
		}
		out[i] = s
	}
	return out
}
